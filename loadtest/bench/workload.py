"""What the load generator sends, written to files once for wrk's scripts to read: one image
as a binary v2 request (inference), as raw pixels (the naive server), and a JPEG as a
multipart form upload (the gateway)."""

from __future__ import annotations

import mimetypes
import uuid
from pathlib import Path

import numpy as np
from brainscan_v2protocol import HEADER_LENGTH, encode_request


def request_image(manifest: dict) -> np.ndarray:
    """The one image every request carries: random uint8 pixels in the model input's shape
    (batch 1, the manifest's layout), the same for the v2 and the raw body."""
    spec = manifest["input"]
    shape = [1, spec["height"], spec["width"], spec.get("channels", 3)]
    if spec.get("layout") == "NCHW":
        shape = [1, shape[3], shape[1], shape[2]]
    return np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)


def request_body(manifest: dict, workdir: Path, name: str = "request") -> tuple[Path, int]:
    """One binary v2 request for one image, as the gateway sends it: the probabilities and,
    from a guarded model, the guard's outputs. Written to ``workdir/<name>.bin``; returns the
    file and the length of its JSON header (``Inference-Header-Content-Length``)."""
    spec = manifest["input"]
    body, headers = encode_request(
        {spec["name"]: request_image(manifest)}, requested_outputs(manifest)
    )
    path = workdir / f"{name}.bin"
    path.write_bytes(body)
    return path, int(headers[HEADER_LENGTH])


def raw_body(manifest: dict, workdir: Path, name: str = "raw") -> Path:
    """The same image as the naive server takes it: its bytes alone. ``workdir/<name>.bin``."""
    path = workdir / f"{name}.bin"
    path.write_bytes(request_image(manifest).tobytes())
    return path


def requested_outputs(manifest: dict) -> list[str]:
    """What the gateway asks for on a prediction without an explanation."""
    guard = manifest.get("ood")
    guard_outputs = [guard["score"], guard["cues"]] if guard else []
    return [manifest["outputs"]["probabilities"], *guard_outputs]


def multipart_upload(path: Path, field: str = "file") -> tuple[bytes, str]:
    """A multipart/form-data body with one file field, as a browser or curl -F sends it, and
    its Content-Type header value (the boundary is also the body's first line)."""
    boundary = f"bench-{uuid.uuid4().hex}"
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{path.name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload_body(image: Path, workdir: Path, name: str = "upload") -> Path:
    """``image`` as a multipart upload in field ``file``, written to ``workdir/<name>.form``."""
    body, _ = multipart_upload(image)
    path = workdir / f"{name}.form"
    path.write_bytes(body)
    return path
