"""The entry point: `python -m brainscan_inference` serves with settings from the environment."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request_id(event: dict) -> str | None:
    return event.get("http", {}).get("request", {}).get("id")


def test_run_serves_the_model_and_logs_json(model_dir) -> None:
    port = free_port()
    env = {
        **os.environ,
        "INFERENCE_MODEL_DIR": str(model_dir),
        "INFERENCE_HOST": "127.0.0.1",
        "INFERENCE_PORT": str(port),
        "INFERENCE_INTRA_OP_THREADS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "brainscan_inference"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "service did not become ready"
            time.sleep(0.1)
        response = httpx.get(f"http://127.0.0.1:{port}/v2/models/tiny")
        assert response.json()["versions"] == ["1"]
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v2/models/tiny/infer",
            json={
                "inputs": [
                    {"name": "image", "shape": [1, 8, 8, 3], "datatype": "UINT8", "data": [7] * 192}
                ]
            },
            headers={"X-Request-ID": "main-test-1"},
        )
        assert answer.status_code == 200 and answer.headers["x-request-id"] == "main-test-1"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn re-raises the signal after a graceful shutdown, so the exit status names it.
    assert process.returncode in (0, -signal.SIGTERM)
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [event["message"] for event in events]
    assert "model loaded" in messages and "inference service stopped" in messages
    assert all(event["service"]["name"] == "brainscan-inference" for event in events)
    (access,) = [e for e in events if request_id(e) == "main-test-1"]
    assert access["message"] == "request" and access["http"]["response"]["status_code"] == 200
