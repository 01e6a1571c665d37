"""ci/smoke_test.py's upload is one the gateway's own decoder accepts, and the script refuses a
gateway that never becomes ready. (The end-to-end image test runs it against a real gateway.)"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys

from brainscan_gateway.imaging.decoding import decode_upload
from brainscan_gateway.imaging.limits import DecodeLimits
from ci_jenkinsfiles import REPO

SCRIPT = REPO / "ci/smoke_test.py"


def _smoke_module():
    spec = importlib.util.spec_from_file_location("brainscan_smoke_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_png_is_an_upload_the_gateway_decodes():
    data = _smoke_module().scan_png()
    decoded = decode_upload(data, DecodeLimits(max_pixels=40_000_000, min_side=32))
    assert decoded.size == (160, 160)
    assert decoded.source_format.value == "png"
    assert decoded.image.getextrema() == (20, 170)  # the disc and the background


def test_unreachable_gateway_fails_with_the_reason():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nothing listens there
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--url", f"http://127.0.0.1:{port}", "--timeout", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "not ready after 1 s" in result.stderr
    assert result.stdout == ""
