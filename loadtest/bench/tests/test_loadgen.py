"""The load generator's multipart uploads, parsed by a real server (python-multipart)."""

from __future__ import annotations

import asyncio
import json
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
from starlette.responses import JSONResponse
from starlette.routing import Route

LOADGEN = Path(__file__).resolve().parents[1] / "loadgen.py"


@pytest.fixture
def upload_server():
    """A loopback server that answers 200 only for a form whose 'file' holds the expected bytes."""
    received: list[tuple[str, bytes]] = []

    async def upload(request: Request) -> JSONResponse:
        form = await request.form()
        file = form.get("file")
        if file is None or isinstance(file, str):
            return JSONResponse({"error": "no file"}, status_code=422)
        received.append((file.filename, await file.read()))
        return JSONResponse({"size": len(received[-1][1])})

    app = Starlette(routes=[Route("/api/v1/predictions", upload, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])))
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1/predictions", received
    server.should_exit = True
    thread.join(30)
    sock.close()


def test_upload_mode_sends_the_file_as_a_multipart_form(upload_server, tmp_path):
    url, received = upload_server
    image = tmp_path / "slice.jpg"
    image.write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 40 + b"\r\n--not-a-boundary")
    load = ["--concurrency", "2", "--seconds", "0.5", "--repeats", "1", "--warmup", "0.2"]
    done = subprocess.run(
        [sys.executable, str(LOADGEN), "--url", url, "--upload", str(image), *load],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (result,) = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0 and result["requests"] > 0
    assert result["answered_in_run"] == len(received) >= result["requests"]
    assert result["client_cpu_seconds"] > 0
    assert received and all(item == ("slice.jpg", image.read_bytes()) for item in received)
