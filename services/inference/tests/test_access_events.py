"""Access events: one per request with its request ID, none for probes or above INFO."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx


def access_events(text: str) -> list[dict]:
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [e for e in events if e.get("message") == "request"]


def wait_for_events(capsys, count: int, timeout: float = 10.0) -> list[dict]:
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        seen += access_events(capsys.readouterr().out)
        time.sleep(0.02)
    return seen


def test_every_request_is_logged_once_with_its_request_id(
    serve, settings_factory, model_dir, capsys
) -> None:
    server = serve(settings_factory(model_dir, log_level="INFO"))
    infer = f"{server.url}/v2/models/tiny/infer"
    body = {
        "inputs": [{"name": "image", "shape": [1, 8, 8, 3], "datatype": "UINT8", "data": [0] * 192}]
    }
    capsys.readouterr()

    def call(i: int) -> httpx.Response:
        return httpx.post(infer, json=body, headers={"X-Request-ID": f"load-{i}"})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(call, range(40)))
    assert {r.status_code for r in responses} == {200}
    for quiet in ("/v2/health/ready", "/v2/health/live", "/metrics"):
        assert httpx.get(f"{server.url}{quiet}").status_code == 200  # never logged
    # Last, so that an event for a probe would have been written before its event.
    given_bad = httpx.get(f"{server.url}/v2/models/other", headers={"X-Request-ID": "bad id!"})

    events = wait_for_events(capsys, 41)
    by_id = {e["http"]["request"]["id"]: e for e in events}
    assert len(events) == 41 == len(by_id)
    for i in range(40):
        event = by_id[f"load-{i}"]
        assert event["url"]["path"] == "/v2/models/tiny/infer"
        assert event["http"]["request"]["method"] == "POST"
        assert event["http"]["response"]["status_code"] == 200
    made = given_bad.headers["x-request-id"]
    assert made != "bad id!" and len(made) == 32  # a malformed ID is replaced, not echoed
    assert by_id[made]["http"]["response"]["status_code"] == 404
    assert by_id[made]["url"]["path"] == "/v2/models/other"
    assert given_bad.json()["request_id"] == made


def test_no_access_events_above_info(serve, settings_factory, model_dir, capsys) -> None:
    server = serve(settings_factory(model_dir, log_level="WARNING"))
    capsys.readouterr()
    assert httpx.get(f"{server.url}/v2/models/tiny").status_code == 200
    time.sleep(0.2)
    assert access_events(capsys.readouterr().out) == []
