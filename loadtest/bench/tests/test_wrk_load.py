"""wrk's JSON summary parsed and judged, CPU per request from /proc, and the Lua scripts run by
a real wrk against a real server (the multipart body parsed by python-multipart)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

needs_wrk = pytest.mark.skipif(
    shutil.which("wrk") is None,
    reason="wrk is not installed (Debian package wrk; .ci/run and `make bench` install it)",
)


def summary_line(**changes) -> str:
    """What report.lua's done() prints, with ``changes``."""
    fields = {
        "requests": 2000, "non_2xx": 0, "first_bad_status": 0, "status_errors": 0,
        "connect_errors": 0, "read_errors": 0, "write_errors": 0, "timeouts": 0,
        "duration_us": 4_000_000, "p50_us": 1500, "p90_us": 2500, "p99_us": 7250, "max_us": 9100,
    }  # fmt: skip
    return json.dumps({**fields, **changes})


def test_the_last_json_line_of_wrks_output_is_the_summary_in_ms(bench):
    wrk_load = bench("wrk_load")
    stdout = "Running 4s test @ http://x\n  Latency Distribution\n" + summary_line() + "\n"
    summary = wrk_load.parse_summary(stdout)
    assert summary["requests"] == 2000 and summary["duration_s"] == 4.0
    assert (summary["p50_ms"], summary["p90_ms"], summary["p99_ms"]) == (1.5, 2.5, 7.25)
    assert summary["max_ms"] == 9.1 and summary["socket_errors"] == 0
    assert wrk_load.failures(summary) is None
    with pytest.raises(wrk_load.WrkFailed, match="no JSON summary"):
        wrk_load.parse_summary("Running 4s test\nunable to connect to 127.0.0.1:1\n")


def test_answers_outside_2xx_socket_errors_and_silence_are_failures(bench):
    wrk_load = bench("wrk_load")

    def failures(**changes):
        return wrk_load.failures(wrk_load.parse_summary(summary_line(**changes)))

    assert failures(non_2xx=3, first_bad_status=307) == "3 answers not 2xx (the first: 307)"
    # wrk's own count (>= 400) stands even if a script did not count
    assert failures(status_errors=2, first_bad_status=503).startswith("2 answers not 2xx")
    assert failures(read_errors=1, timeouts=2) == (
        "3 socket errors (connect 0, read 1, write 0, timeout 2)"
    )
    assert failures(requests=0) == "no answer at all"


def test_cpu_per_request_is_each_groups_cpu_over_the_run_divided_by_its_answers(bench):
    wrk_load = bench("wrk_load")
    summary = wrk_load.parse_summary(summary_line())
    summary["wrk_cpu_s"] = 0.1
    before = {"gateway": 10.0, "inference": 3.0}
    after = {"gateway": 18.0, "inference": 5.5}
    result = wrk_load.from_summary(summary, 8, before, after, {"gateway": 95.0})
    assert result.throughput == 500.0  # 2000 answers in 4 s
    assert result.cpu_ms_per_request == {"gateway": 4.0, "inference": 1.25, "wrk": 0.05}
    assert result.rss_mb == {"gateway": 95.0} and result.p99_ms == 7.25


def test_wrk_is_run_with_latency_statistics_the_script_and_its_arguments(bench, monkeypatch):
    wrk_load = bench("wrk_load")
    monkeypatch.setattr(wrk_load.shutil, "which", lambda name: f"/usr/bin/{name}")
    target = wrk_load.v2_target("http://h:1/v2/models/m/infer", Path("/w/b.bin"), 93, {})
    command = wrk_load.wrk_command(target, concurrency=1, seconds=4, threads=2)
    assert command[:6] == ["/usr/bin/wrk", "-t1", "-c1", "-d4s", "--timeout=30s", "--latency"]
    assert command[6:] == [
        "-s", str(wrk_load.SCRIPTS / "v2.lua"), "http://h:1/v2/models/m/infer", "--", "/w/b.bin",
        "93",
    ]  # fmt: skip
    monkeypatch.setattr(wrk_load.shutil, "which", lambda name: None)
    with pytest.raises(wrk_load.WrkFailed, match=r"\.ci/run install"):
        wrk_load.wrk_command(target, 1, 1)


def test_stat_fields_are_counted_from_the_last_parenthesis(bench):
    processes = bench("processes")
    text = "4242 (a (b) c) S 1 4240 4240 0 -1 0 0 0 0 0 120 30 0 0 20 0 3 0 99 1000 2560 0"
    stat = processes.parse_stat(text)
    assert (stat.pgrp, stat.cpu_ticks, stat.rss_pages) == (4240, 150, 2560)


def test_a_process_groups_cpu_counts_the_children_it_started(bench):
    processes = bench("processes")
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    spin += "time.sleep(30)\n"  # alive, so that its CPU time stays in the group's account
    parent = f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {spin!r}])\n"
    parent += "time.sleep(30)\n"
    leader = subprocess.Popen([sys.executable, "-c", parent], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and processes.group_cpu_seconds(leader.pid) < 0.3:
            time.sleep(0.05)
        members = processes.group_stats(leader.pid)
        assert leader.pid in members and len(members) == 2  # the leader and its child
        assert processes.group_cpu_seconds(leader.pid) >= 0.3  # mostly the child's
        assert sum(processes.group_rss_mb(leader.pid).values()) > 1
        assert os.getpid() not in members
    finally:
        processes.stop_group(leader, grace=5)


@pytest.fixture
def echo_server():
    """A loopback server: /upload answers 200 only for a form whose 'file' holds a file,
    /bytes echoes the body's length and headers, /moved answers a redirect."""
    received: list = []

    async def upload(request: Request) -> JSONResponse:
        form = await request.form()
        file = form.get("file")
        if file is None or isinstance(file, str):
            return JSONResponse({"error": "no file"}, status_code=422)
        received.append((file.filename, await file.read()))
        return JSONResponse({"size": len(received[-1][1])})

    async def raw(request: Request) -> JSONResponse:
        received.append((dict(request.headers), await request.body()))
        return JSONResponse({})

    async def moved(request: Request) -> Response:
        await request.body()
        return Response(status_code=307, headers={"Location": "/bytes"})

    app = Starlette(
        routes=[
            Route("/upload", upload, methods=["POST"]),
            Route("/bytes", raw, methods=["POST"]),
            Route("/moved", moved, methods=["POST"]),
        ]
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", received
    server.should_exit = True
    thread.join(30)
    sock.close()


@needs_wrk
def test_the_multipart_script_sends_the_upload_as_a_form(bench, echo_server, tmp_path):
    wrk_load, workload = bench("wrk_load"), bench("workload")
    base, received = echo_server
    image = tmp_path / "slice.jpg"
    image.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 40 + b"\r\n--not-a-boundary")
    target = wrk_load.multipart_target(f"{base}/upload", workload.upload_body(image, tmp_path), {})
    summary = wrk_load.run_wrk(target, concurrency=2, seconds=1)
    assert summary["requests"] > 0 and summary["wrk_cpu_s"] > 0
    assert len(received) >= summary["requests"]
    assert all(item == ("slice.jpg", image.read_bytes()) for item in received)


@needs_wrk
def test_the_v2_script_sends_the_header_length_and_a_redirect_fails_the_run(
    bench, echo_server, tmp_path
):
    wrk_load = bench("wrk_load")
    base, received = echo_server
    body = tmp_path / "request.bin"
    body.write_bytes(b'{"inputs": []}' + bytes(64))
    summary = wrk_load.run_wrk(wrk_load.v2_target(f"{base}/bytes", body, 14, {}), 1, 1)
    assert summary["requests"] > 0
    headers, sent = received[0]
    assert headers["inference-header-content-length"] == "14"
    assert headers["content-type"] == "application/octet-stream" and sent == body.read_bytes()
    with pytest.raises(wrk_load.WrkFailed, match=r"answers not 2xx \(the first: 307\)"):
        wrk_load.run_wrk(wrk_load.raw_target(f"{base}/moved", body, {}), 1, 1)
