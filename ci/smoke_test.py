"""Smoke test of a deployed brainscan: the gateway becomes ready, then classifies one image.

Standard library only, so any CI agent runs it with its own python3:
    python3 ci/smoke_test.py --url https://brainscan.example.org [--timeout 300]
An API key, when the gateway requires one, comes from the SMOKE_API_KEY environment variable.
Exit 0 and one JSON line (label, model version) on success; exit 1 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib


def scan_png(side: int = 160) -> bytes:
    """A grey PNG of a bright disc on a dark background: a valid upload of plausible size."""
    rows = bytearray()
    centre, radius = side / 2, side * 0.35
    for y in range(side):
        rows.append(0)  # filter type "none" for each scanline
        for x in range(side):
            inside = (x - centre) ** 2 + (y - centre) ** 2 < radius**2
            rows.append(170 if inside else 20)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows)))
        + chunk(b"IEND", b"")
    )


def _request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    api_key = os.environ.get("SMOKE_API_KEY")
    if api_key:
        request.add_header("X-API-Key", api_key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(base: str, timeout: float) -> dict:
    """Poll /readyz until 200 (the model is loaded behind the gateway) or the time is up."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = _request(f"{base}/readyz")
            if status == 200:
                return json.loads(body)
            last = f"HTTP {status}: {body[:300].decode(errors='replace')}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(5)
    raise SystemExit(f"smoke test: {base}/readyz not ready after {timeout:.0f} s ({last})")


def predict(base: str) -> dict:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="smoke.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + scan_png()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request_id = f"smoke-{uuid.uuid4()}"
    status, answer = _request(
        f"{base}/api/v1/predictions",
        data=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-Request-ID": request_id,
        },
    )
    if status != 200:
        raise SystemExit(f"smoke test: prediction got HTTP {status}: {answer[:500]!r}")
    prediction = json.loads(answer)
    for key in ("label", "confidence", "probabilities", "model"):
        if key not in prediction:
            raise SystemExit(f"smoke test: prediction lacks {key!r}: {prediction}")
    if prediction["label"] not in prediction["probabilities"]:
        raise SystemExit(f"smoke test: label {prediction['label']!r} is not a class")
    return prediction


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL of the gateway")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for ready")
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    wait_ready(base, args.timeout)
    prediction = predict(base)
    summary = {
        "label": prediction["label"],
        "confidence": prediction["confidence"],
        "model": prediction["model"],
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
