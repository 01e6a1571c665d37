"""The console script runs model-sync as a process: it serves, logs requests, says why it is not
ready, stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from modelsync_servers import wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_console_script_serves_and_stops_on_sigterm(tmp_path) -> None:
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
    log = open(tmp_path / "model-sync.log", "wb")  # noqa: SIM115 - the child writes to it
    process = subprocess.Popen([str(script)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
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
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
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
