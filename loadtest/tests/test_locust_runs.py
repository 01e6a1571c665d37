"""Headless Locust runs, each in its own process: a short run against the real local stack must
have no failure; server errors make the run fail; the step shape drives the users and ends."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
RUN_LOCAL = Path(__file__).resolve().parents[1] / "run_local.py"


def run_local(*args: str, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, str(RUN_LOCAL), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def stats(out: Path) -> dict[str, dict[str, str]]:
    with (out / "locust_stats.csv").open() as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


def test_a_short_run_against_the_local_stack_has_no_failure(tmp_path):
    done = run_local(
        "--stand-in", "--run-time", "20s", "--users", "8", "--spawn-rate", "4",
        "--images-per-variant", "1", "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = stats(tmp_path)
    assert int(rows["Aggregated"]["Failure Count"]) == 0
    assert int(rows["Aggregated"]["Request Count"]) > 0
    assert any(name.startswith("/api/v1/predictions [") for name in rows)
    with (tmp_path / "locust_failures.csv").open() as handle:
        assert len(handle.readlines()) == 1  # the header only
    assert (tmp_path / "locust.html").stat().st_size > 0
    gateway_log = (tmp_path / "stack-logs" / "gateway.log").read_text()
    assert '"message":"prediction"' in gateway_log
    assert "0 failures" in done.stdout


class _Answer(BaseHTTPRequestHandler):
    def _reply(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.server.answer(self.command, self.path)
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _reply

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def gateway_double() -> Iterator[ThreadingHTTPServer]:
    """An HTTP server whose answers a test sets: errors and timings no real gateway gives."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_server_errors_make_the_run_fail(tmp_path, gateway_double):
    gateway_double.answer = lambda method, path: (500, {"error": {"code": "internal_error"}})
    url = f"http://127.0.0.1:{gateway_double.server_address[1]}"
    done = run_local(
        "--host", url, "--run-time", "15s", "--users", "3", "--spawn-rate", "3",
        "--images-per-variant", "1", "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode != 0
    rows = stats(tmp_path)
    assert int(rows["Aggregated"]["Failure Count"]) > 0


def test_the_step_shape_drives_the_users_and_ends_by_itself(tmp_path, gateway_double):
    gateway_double.answer = lambda method, path: (200, {"name": "m", "classes": ["a", "b"]})
    url = f"http://127.0.0.1:{gateway_double.server_address[1]}"
    schedule = {
        "LOADTEST_STEP_USERS": "2",
        "LOADTEST_STEP_SECONDS": "3",
        "LOADTEST_MAX_USERS": "4",
        "LOADTEST_HOLD_SECONDS": "2",
        "LOADTEST_SPAWN_RATE": "4",
    }
    done = run_local(
        "--host", url, "--shape", "--tags", "model", "--images-per-variant", "1",
        "--out", str(tmp_path), env=schedule, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = stats(tmp_path)
    assert set(rows) == {"/api/v1/model", "Aggregated"}
    assert int(rows["/api/v1/model"]["Failure Count"]) == 0
    history = (tmp_path / "locust_stats_history.csv").read_text()
    assert ",4," in history  # the peak of 4 users was reached
