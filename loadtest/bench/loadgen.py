"""Closed-loop HTTP load generator: N virtual users on kept-alive connections, one process.

Raw asyncio streams instead of an HTTP library so that the client spends as little of the
shared CPU as possible; every target gets this same client. Each user sends the same request
back to back: a raw body (``--body``, e.g. a binary v2 tensor) or a file as a multipart form
upload (``--upload``, as a browser or curl -F sends it). After a warm-up, each repeat counts the
requests completed in its window and their latencies (from send to answer). Run as a script:
prints one JSON line (one entry per repeat; the last also holds the answers of the whole run
and the client's CPU seconds over it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mimetypes
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status code, and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep_alive = False
    if length:
        await reader.readexactly(length)
    return status, keep_alive


async def user(host, port, request: bytes, state: dict) -> None:
    """One virtual user; reconnects when the server closes (Flask's server does every time)."""
    writer = None
    while not state["stop"]:
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status, keep_alive = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, keep_alive = 0, False
        finished = time.perf_counter()
        state["answered"] += 1
        if not keep_alive and writer is not None:
            writer.close()
            writer = None
        window = state["window"]
        # Completions inside the window count, whenever they started: counting only requests
        # that also started inside it would undercount a server slower than the window.
        if window is not None and window["start"] <= finished <= window["end"]:
            if status == 200:
                window["latencies"].append(finished - started)
            else:
                window["errors"] += 1
    if writer is not None:
        writer.close()


def multipart_upload(path: Path, field: str) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field, and its Content-Type header value."""
    boundary = f"bench-{uuid.uuid4().hex}"
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{path.name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def summarise(window: dict) -> dict:
    latencies = sorted(window["latencies"])
    seconds = window["end"] - window["start"]
    if not latencies:
        return {"throughput": 0.0, "p50_ms": None, "p99_ms": None, "errors": window["errors"]}
    return {
        "throughput": len(latencies) / seconds,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "errors": window["errors"],
        "requests": len(latencies),
    }


async def run(url: str, request_body: bytes, headers: dict, args) -> list[dict]:
    parts = urlsplit(url)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head += [f"Content-Length: {len(request_body)}", "", ""]
    request = "\r\n".join(head).encode() + request_body
    state: dict = {"stop": False, "window": None, "answered": 0}
    cpu_started = time.process_time()
    users = [
        asyncio.create_task(user(parts.hostname, parts.port, request, state))
        for _ in range(args.concurrency)
    ]
    await asyncio.sleep(args.warmup)
    results = []
    for _ in range(args.repeats):
        now = time.perf_counter()
        window = {"start": now, "end": now + args.seconds, "latencies": [], "errors": 0}
        state["window"] = window
        # Wait past the window for the requests in flight at its end to finish (not counted).
        await asyncio.sleep(args.seconds)
        state["window"] = None
        results.append(summarise(window))
    state["stop"] = True
    await asyncio.wait(users, timeout=30)
    # Every answer since the start (warm-up and tail too): what a server's CPU time was spent on,
    # and the client's own CPU time over the same run, to set against it.
    results[-1]["answered_in_run"] = state["answered"]
    results[-1]["client_cpu_seconds"] = time.process_time() - cpu_started
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--body", type=Path, help="send this file as the raw request body")
    source.add_argument("--upload", type=Path, help="send this file as a multipart form upload")
    parser.add_argument("--field", default="file", help="form field of --upload")
    parser.add_argument("--header", action="append", default=[], help="Name: value")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    if args.upload is not None:
        body, headers["Content-Type"] = multipart_upload(args.upload, args.field)
    else:
        body = args.body.read_bytes()
    results = asyncio.run(run(args.url, body, headers, args))
    sys.stdout.write(json.dumps(results) + "\n")  # the result, for run.py


if __name__ == "__main__":
    main()
