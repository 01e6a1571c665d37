"""The console script runs model-sync as a process: it serves, logs requests, says why it is not
ready, stops (answering the long polls still open)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from modelsync_servers import wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_process(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``brainscan-model-sync`` on a free port, following a model of an MLflow that is down;
    its output goes to ``tmp_path / "model-sync.log"``."""
    port, dead_mlflow = free_port(), free_port()
    env = {
        **os.environ,
        "MODELSYNC_HOST": "127.0.0.1",
        "MODELSYNC_PORT": str(port),
        "MODELSYNC_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{dead_mlflow}",
        "MODELSYNC_MODELS": "brainscan-mobilenetv2",
        "MODELSYNC_CACHE_DIR": str(tmp_path / "cache"),
        "MODELSYNC_RETRY_INITIAL_DELAY": "0.2",
    }
    script = Path(sys.executable).parent / "brainscan-model-sync"
    with open(tmp_path / "model-sync.log", "wb") as log:  # the child keeps its own handle
        process = subprocess.Popen([str(script)], env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_the_console_script_serves_and_stops_on_sigterm(tmp_path) -> None:
    process, url = start_process(tmp_path)
    try:
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200)
        wait_until(lambda: httpx.get(f"{url}/readyz").json()["registry"]["reachable"] is False)
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert "MLflow" in ready.json()["registry"]["last_error"]
        asked = httpx.get(
            f"{url}/v1/models/brainscan-mobilenetv2", headers={"X-Request-ID": "main-test-1"}
        )
        assert asked.headers["x-request-id"] == "main-test-1"
    finally:
        stop_process(process)
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status reports it.
    assert process.returncode in (0, -signal.SIGTERM)
    lines = (tmp_path / "model-sync.log").read_text().splitlines()
    assert any('"message":"model-sync started"' in line for line in lines)
    assert any('"message":"model-sync stopped"' in line for line in lines)
    assert all(line.startswith("{") for line in lines)  # ECS JSON, one event per line
    events = [json.loads(line) for line in lines]
    # One access event per request, with its ID; the probes polled above have none.
    (access,) = [e for e in events if e["message"] == "request"]
    assert access["http"]["request"]["id"] == "main-test-1"
    assert access["http"]["response"]["status_code"] == asked.status_code
    assert access["url"]["path"] == "/v1/models/brainscan-mobilenetv2"


def test_an_open_long_poll_is_answered_when_the_process_stops(tmp_path) -> None:
    process, url = start_process(tmp_path)
    answers: list[httpx.Response] = []
    poll = threading.Thread(
        target=lambda: answers.append(
            httpx.get(f"{url}/v1/models/brainscan-mobilenetv2", params={"wait": 30}, timeout=40)
        )
    )
    try:
        wait_until(lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200)
        poll.start()  # waits for a first version, which a dead MLflow never gives
        wait_until(
            lambda: (
                "brainscan_modelsync_long_polls_waiting 1.0"
                in httpx.get(f"{url}/metrics", timeout=5).text
            ),
            what="the long poll waiting",
        )
        stopping = time.monotonic()
    finally:
        stop_process(process)
    poll.join(40)
    # Answered at once with a clean 503 (nothing to serve yet), not cut at the graceful timeout.
    assert time.monotonic() - stopping < 5
    (answer,) = answers
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.json()["error"]["code"] == "model_not_available"
    events = [json.loads(line) for line in (tmp_path / "model-sync.log").read_text().splitlines()]
    assert [e["message"] for e in events if e["log.level"] in ("error", "critical")] == []
    (access,) = [e for e in events if e["message"] == "request"]
    assert access["http"]["response"]["status_code"] == 503
    assert any(e["message"] == "model-sync stopped" for e in events)
