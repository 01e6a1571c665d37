"""A v2 request as a client sends it (binary tensors) and a response as a client reads it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from .datatypes import UnknownDatatype, numpy_dtype, v2_datatype
from .framing import join_body, little_endian_bytes, split_body


@dataclass(frozen=True)
class InferResponse:
    """A decoded response: the model that answered and its output tensors by name."""

    model_name: str
    model_version: str
    outputs: dict[str, np.ndarray]
    output_parameters: dict[str, dict[str, Any]] = field(default_factory=dict)


def encode_request(
    inputs: Mapping[str, np.ndarray],
    outputs: list[str],
    *,
    request_id: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A request whose inputs travel as binary tensors and whose outputs are asked for binary."""
    entries, chunks = [], []
    for name, tensor in inputs.items():
        raw = little_endian_bytes(tensor)
        entries.append(
            {
                "name": name,
                "shape": list(tensor.shape),
                "datatype": v2_datatype(tensor.dtype),
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        chunks.append(raw)
    document: dict[str, Any] = {
        "inputs": entries,
        "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in outputs],
    }
    if request_id:
        document["id"] = request_id
    if parameters:
        document["parameters"] = parameters
    return join_body(document, chunks)


def decode_response(body: bytes, header_length: str | None) -> InferResponse:
    """Parse a response (JSON, or JSON header + binary tensors); ValueError if malformed."""
    header, binary = split_body(body, header_length)
    try:
        document = orjson.loads(header)
        entries = document["outputs"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"not a v2 inference response: {exc}") from None
    outputs: dict[str, np.ndarray] = {}
    parameters: dict[str, dict[str, Any]] = {}
    offset = 0
    for entry in entries:
        name, datatype, shape = entry["name"], entry["datatype"], entry["shape"]
        try:
            dtype = numpy_dtype(datatype)
        except UnknownDatatype as exc:
            raise ValueError(f"output {name!r}: {exc}") from None
        entry_parameters = dict(entry.get("parameters") or {})
        size = entry_parameters.pop("binary_data_size", None)
        if size is not None:
            if offset + size > len(binary):
                raise ValueError(f"output {name!r} runs past the end of the body")
            array = np.frombuffer(binary[offset : offset + size], dtype=dtype)
            offset += size
        else:
            array = np.asarray(entry["data"], dtype=dtype)
        if array.size != math.prod(shape):
            raise ValueError(f"output {name!r}: {array.size} values for shape {shape}")
        outputs[name] = array.reshape(shape).astype(dtype.newbyteorder("="), copy=False)
        parameters[name] = entry_parameters
    return InferResponse(
        model_name=str(document.get("model_name", "")),
        model_version=str(document.get("model_version", "")),
        outputs=outputs,
        output_parameters=parameters,
    )
