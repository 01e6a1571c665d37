"""Open Inference Protocol tensor datatypes and their numpy equivalents (little-endian)."""

from __future__ import annotations

import numpy as np

# BYTES has no fixed element size; no image classifier input needs it, so it has no entry.
_V2_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_NUMPY_TO_V2 = {dtype.newbyteorder("="): name for name, dtype in _V2_TO_NUMPY.items()}

# onnxruntime's type strings (``NodeArg.type``) as protocol datatypes.
_ONNXRUNTIME_TO_V2 = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
    "tensor(bfloat16)": "BF16",
}

# Manifest dtypes (brainscan_manifest.InputSpec.dtype) as protocol datatypes.
MANIFEST_TO_V2 = {"uint8": "UINT8", "float32": "FP32"}


class UnknownDatatype(ValueError):
    """A datatype this protocol side has no numpy equivalent for."""


def numpy_dtype(datatype: str) -> np.dtype:
    """The little-endian numpy dtype of a protocol datatype."""
    try:
        return _V2_TO_NUMPY[datatype]
    except KeyError:
        known = ", ".join(_V2_TO_NUMPY)
        raise UnknownDatatype(
            f"datatype {datatype!r} is not supported (use one of {known})"
        ) from None


def v2_datatype(dtype: np.dtype) -> str:
    """The protocol datatype of a numpy dtype (native or little-endian)."""
    try:
        return _NUMPY_TO_V2[np.dtype(dtype).newbyteorder("=")]
    except KeyError:
        raise UnknownDatatype(f"numpy {np.dtype(dtype)} has no protocol datatype") from None


def onnxruntime_datatype(type_name: str) -> str:
    """The protocol datatype of an onnxruntime output type such as ``tensor(float)``."""
    try:
        return _ONNXRUNTIME_TO_V2[type_name]
    except KeyError:
        raise UnknownDatatype(f"onnxruntime type {type_name!r} has no protocol datatype") from None
