"""The Open Inference Protocol (v2, KServe/Triton) as brainscan speaks it, in one place.

``datatypes``: tensor datatypes and their numpy and onnxruntime equivalents. ``framing``: the
binary tensor data extension (a JSON header of ``Inference-Header-Content-Length`` bytes, then
each binary tensor in order). ``client``: a request as a client builds it and a response as a
client reads it. The server's request parsing, with its error codes, is inference's ``codec``.
"""

from .client import InferResponse, decode_response, encode_request
from .datatypes import (
    MANIFEST_TO_V2,
    UnknownDatatype,
    numpy_dtype,
    onnxruntime_datatype,
    v2_datatype,
)
from .framing import (
    BINARY_CONTENT_TYPE,
    HEADER_LENGTH,
    JSON_CONTENT_TYPE,
    FramingError,
    join_body,
    little_endian_bytes,
    split_body,
)

__all__ = [
    "BINARY_CONTENT_TYPE",
    "HEADER_LENGTH",
    "JSON_CONTENT_TYPE",
    "MANIFEST_TO_V2",
    "FramingError",
    "InferResponse",
    "UnknownDatatype",
    "decode_response",
    "encode_request",
    "join_body",
    "little_endian_bytes",
    "numpy_dtype",
    "onnxruntime_datatype",
    "split_body",
    "v2_datatype",
]
