"""The v2 inference request and response bodies: JSON tensors and the binary tensor data extension.

Generic protocol handling only: what the tensors mean for a model is checked in ``model``.
With the binary extension the body is a JSON header of ``Inference-Header-Content-Length``
bytes followed by each binary tensor, in the order its input lists them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from brainscan_v2protocol import (
    FramingError,
    UnknownDatatype,
    join_body,
    little_endian_bytes,
    split_body,
    v2_datatype,
)
from brainscan_v2protocol import numpy_dtype as protocol_dtype

from .errors import BadRequest


def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy dtype of a protocol datatype; 400 for one this service does not handle."""
    try:
        return protocol_dtype(datatype)
    except UnknownDatatype as exc:
        raise BadRequest(str(exc), code="input_datatype") from None


@dataclass
class RequestInput:
    """One input tensor as sent: shape and datatype checked for form, data decoded on demand."""

    name: str
    shape: tuple[int, ...]
    datatype: str
    parameters: dict[str, Any]
    json_data: Any = None
    binary_data: memoryview | None = None

    @property
    def element_count(self) -> int:
        return math.prod(self.shape)

    def to_numpy(self) -> np.ndarray:
        """The tensor as an array of its declared shape and datatype; 400 if it does not fit."""
        dtype = numpy_dtype(self.datatype)
        if self.binary_data is not None:
            expected = self.element_count * dtype.itemsize
            if len(self.binary_data) != expected:
                raise BadRequest(
                    f"input {self.name!r}: binary_data_size is {len(self.binary_data)} bytes, "
                    f"but shape {list(self.shape)} of {self.datatype} needs {expected}",
                    code="input_byte_length",
                )
            return np.frombuffer(self.binary_data, dtype=dtype).reshape(self.shape)
        return self._json_to_numpy(dtype)

    def _json_to_numpy(self, dtype: np.dtype) -> np.ndarray:
        if self.json_data is None:
            raise BadRequest(
                f"input {self.name!r} has neither 'data' nor a binary_data_size parameter",
                code="input_data",
            )
        try:
            values = np.asarray(self.json_data)
        except ValueError as exc:  # ragged nesting
            raise BadRequest(f"input {self.name!r}: 'data' is not a tensor: {exc}") from None
        if values.size != self.element_count:
            raise BadRequest(
                f"input {self.name!r}: 'data' holds {values.size} values, "
                f"shape {list(self.shape)} needs {self.element_count}",
                code="input_shape",
            )
        if values.size and values.dtype.kind not in "biuf":
            raise BadRequest(
                f"input {self.name!r}: 'data' must hold numbers for {self.datatype}",
                code="input_data",
            )
        if dtype.kind in "iu" and values.size:
            if values.dtype.kind == "f":
                raise BadRequest(
                    f"input {self.name!r}: {self.datatype} takes integers, 'data' holds fractions",
                    code="input_data",
                )
            info = np.iinfo(dtype)
            if values.min() < info.min or values.max() > info.max:
                raise BadRequest(
                    f"input {self.name!r}: values outside {info.min}..{info.max} for "
                    f"{self.datatype}",
                    code="input_data",
                )
        return values.astype(dtype, copy=False).reshape(self.shape)


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferRequest:
    """A parsed inference request."""

    id: str | None
    inputs: list[RequestInput]
    outputs: list[RequestedOutput] | None
    """None: the client named no outputs and gets the model's default ones."""
    parameters: dict[str, Any]
    binary_output: bool
    """Request-level ``binary_data_output``: the default for outputs without their own flag."""


def decode_request(body: bytes, header_length: str | None) -> InferRequest:
    """Parse a request body (JSON, or JSON header + binary tensors); 400 naming what is wrong."""
    try:
        header, binary = split_body(body, header_length)
    except FramingError as exc:
        raise BadRequest(str(exc), code=exc.code) from None
    try:
        document = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request is not valid JSON: {exc}", code="malformed_json") from None
    return _parse_document(document, binary, has_binary_header=header_length is not None)


def _parse_document(document: Any, binary: memoryview, *, has_binary_header: bool) -> InferRequest:
    if not isinstance(document, dict):
        raise BadRequest("request must be a JSON object", code="malformed_json")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest("'id' must be a string", code="malformed_json")
    parameters = _parameters(document.get("parameters"), "request")
    raw_inputs = document.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise BadRequest("'inputs' must be a non-empty list", code="malformed_json")

    inputs: list[RequestInput] = []
    offset = 0
    for raw in raw_inputs:
        tensor = _parse_input(raw)
        size = tensor.parameters.get("binary_data_size")
        if size is not None:
            if not has_binary_header:
                raise BadRequest(
                    f"input {tensor.name!r} has binary_data_size but the request has no "
                    "Inference-Header-Content-Length header",
                    code="malformed_header",
                )
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BadRequest(
                    f"input {tensor.name!r}: binary_data_size must be a non-negative integer",
                    code="input_byte_length",
                )
            if offset + size > len(binary):
                raise BadRequest(
                    f"input {tensor.name!r}: binary_data_size {size} runs past the end of the "
                    f"body ({len(binary) - offset} bytes left)",
                    code="input_byte_length",
                )
            tensor.binary_data = binary[offset : offset + size]
            offset += size
        inputs.append(tensor)
    if offset != len(binary):
        raise BadRequest(
            f"body has {len(binary) - offset} bytes after the last binary tensor",
            code="input_byte_length",
        )

    binary_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise BadRequest("parameter binary_data_output must be true or false")
    outputs = None
    if "outputs" in document and document["outputs"] is not None:
        raw_outputs = document["outputs"]
        if not isinstance(raw_outputs, list):
            raise BadRequest("'outputs' must be a list", code="malformed_json")
        outputs = [_parse_output(raw, binary_output) for raw in raw_outputs]
    return InferRequest(
        id=request_id,
        inputs=inputs,
        outputs=outputs,
        parameters=parameters,
        binary_output=binary_output,
    )


def _parse_input(raw: Any) -> RequestInput:
    if not isinstance(raw, dict):
        raise BadRequest("each input must be a JSON object", code="malformed_json")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("each input needs a 'name' string", code="malformed_json")
    shape = raw.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequest(
            f"input {name!r}: 'shape' must be a list of non-negative integers", code="input_shape"
        )
    datatype = raw.get("datatype")
    if not isinstance(datatype, str):
        raise BadRequest(f"input {name!r}: 'datatype' must be a string", code="input_datatype")
    return RequestInput(
        name=name,
        shape=tuple(shape),
        datatype=datatype,
        parameters=_parameters(raw.get("parameters"), f"input {name!r}"),
        json_data=raw.get("data"),
    )


def _parse_output(raw: Any, binary_default: bool) -> RequestedOutput:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise BadRequest("each requested output must be an object with a 'name'")
    name = raw["name"]
    parameters = _parameters(raw.get("parameters"), f"output {name!r}")
    if parameters.get("classification"):
        raise BadRequest(
            f"output {name!r}: the classification extension is not supported; "
            "ask for the probabilities instead",
            code="unsupported",
        )
    binary = parameters.get("binary_data", binary_default)
    if not isinstance(binary, bool):
        raise BadRequest(f"output {name!r}: binary_data must be true or false")
    return RequestedOutput(name=name, binary=binary, parameters=parameters)


def _parameters(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest(f"{where}: 'parameters' must be a JSON object", code="malformed_json")
    return raw


@dataclass(frozen=True)
class ResponseOutput:
    name: str
    tensor: np.ndarray
    binary: bool
    parameters: dict[str, Any] = field(default_factory=dict)


def encode_response(
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: list[ResponseOutput],
) -> tuple[bytes, dict[str, str]]:
    """Serialise a response; binary outputs follow the JSON header in output order."""
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        document["id"] = request_id
    entries = []
    chunks: list[bytes] = []
    for output in outputs:
        tensor = np.ascontiguousarray(output.tensor)
        entry: dict[str, Any] = {
            "name": output.name,
            "datatype": v2_datatype(tensor.dtype),
            "shape": list(tensor.shape),
        }
        parameters = dict(output.parameters)
        if output.binary:
            raw = little_endian_bytes(tensor)
            parameters["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            entry["data"] = tensor.reshape(-1)
        if parameters:
            entry["parameters"] = parameters
        entries.append(entry)
    document["outputs"] = entries
    return join_body(document, chunks)
