"""The binary tensor data extension: a JSON header, then the raw tensors, one after another.

The header's length travels in ``Inference-Header-Content-Length``; each binary tensor's
``parameters.binary_data_size`` says how many of the following bytes are its own, in the order
the inputs (request) or outputs (response) list them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

# HTTP header names are case-insensitive; lower case is how ASGI servers hand them over.
HEADER_LENGTH = "inference-header-content-length"
JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"


class FramingError(ValueError):
    """The body does not split into a JSON header and binary tensors as declared."""

    code = "malformed_header"


def split_body(body: bytes, header_length: str | None) -> tuple[memoryview, memoryview]:
    """(JSON header, binary tail) of a body; without the header field all of it is JSON."""
    view = memoryview(body)
    if header_length is None:
        return view, view[:0]
    try:
        json_size = int(header_length)
    except ValueError:
        raise FramingError(
            f"Inference-Header-Content-Length must be an integer, got {header_length!r}"
        ) from None
    if not 0 < json_size <= len(body):
        raise FramingError(
            f"Inference-Header-Content-Length {json_size} is outside the body of {len(body)} bytes"
        )
    return view[:json_size], view[json_size:]


def join_body(document: dict[str, Any], chunks: list[bytes]) -> tuple[bytes, dict[str, str]]:
    """Serialise a document and its binary tensors; plain JSON when there are none."""
    header = orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, {"content-type": JSON_CONTENT_TYPE}
    headers = {"content-type": BINARY_CONTENT_TYPE, HEADER_LENGTH: str(len(header))}
    return b"".join([header, *chunks]), headers


def little_endian_bytes(tensor: np.ndarray) -> bytes:
    """A tensor's elements in C order and little-endian, as the extension carries them."""
    tensor = np.ascontiguousarray(tensor)
    return tensor.astype(tensor.dtype.newbyteorder("<"), copy=False).tobytes()
