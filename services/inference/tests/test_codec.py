"""The v2 request/response codec: JSON tensors, the binary extension, and malformed bodies."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from brainscan_inference.codec import ResponseOutput, decode_request, encode_response
from brainscan_inference.errors import BadRequest


def binary_body(document: dict, *tensors: bytes) -> tuple[bytes, str]:
    header = orjson.dumps(document)
    return header + b"".join(tensors), str(len(header))


def test_json_tensor_decodes_flat_or_nested() -> None:
    values = np.arange(12, dtype=np.uint8).reshape(1, 2, 2, 3)
    for data in (values.ravel().tolist(), values.tolist()):
        body = orjson.dumps(
            {
                "inputs": [
                    {"name": "image", "shape": [1, 2, 2, 3], "datatype": "UINT8", "data": data}
                ]
            }
        )
        request = decode_request(body, None)
        assert np.array_equal(request.inputs[0].to_numpy(), values)
        assert request.outputs is None and request.binary_output is False


def test_binary_tensors_follow_the_json_header_in_input_order() -> None:
    first = np.arange(6, dtype=np.float32)
    second = np.array([1, 2], dtype=np.uint8)
    body, length = binary_body(
        {
            "id": "r1",
            "inputs": [
                {
                    "name": "a",
                    "shape": [2, 3],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 24},
                },
                {
                    "name": "b",
                    "shape": [2],
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": 2},
                },
            ],
            "outputs": [{"name": "p", "parameters": {"binary_data": True}}, {"name": "q"}],
            "parameters": {"binary_data_output": False, "activation_map": True},
        },
        first.tobytes(),
        second.tobytes(),
    )
    request = decode_request(body, length)
    assert request.id == "r1"
    assert np.array_equal(request.inputs[0].to_numpy(), first.reshape(2, 3))
    assert np.array_equal(request.inputs[1].to_numpy(), second)
    assert [(o.name, o.binary) for o in request.outputs] == [("p", True), ("q", False)]
    assert request.parameters["activation_map"] is True


def test_binary_data_output_is_the_default_for_outputs_without_their_own_flag() -> None:
    body = orjson.dumps(
        {
            "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}],
            "outputs": [{"name": "p"}, {"name": "q", "parameters": {"binary_data": False}}],
            "parameters": {"binary_data_output": True},
        }
    )
    request = decode_request(body, None)
    assert [(o.name, o.binary) for o in request.outputs] == [("p", True), ("q", False)]


@pytest.mark.parametrize(
    ("body", "header", "code"),
    [
        (b"{not json", None, "malformed_json"),
        (b"[]", None, "malformed_json"),
        (b'{"inputs": []}', None, "malformed_json"),
        (b'{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32"}]}', None, "input_shape"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": 5}]}', None, "input_datatype"),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}',
            "abc",
            "malformed_header",
        ),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}',
            "9999",
            "malformed_header",
        ),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}', "0", "malformed_header"),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",'
            b' "parameters": {"binary_data_size": 4}}]}',
            None,
            "malformed_header",
        ),
    ],
)
def test_malformed_requests_are_400_with_a_code(body: bytes, header, code: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_request(body, header)
    assert caught.value.code == code
    assert caught.value.status == 400


def test_binary_size_running_past_the_body_is_refused() -> None:
    body, length = binary_body(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 16},
                }
            ]
        },
        b"\x00" * 8,
    )
    with pytest.raises(BadRequest, match="runs past the end") as caught:
        decode_request(body, length)
    assert caught.value.code == "input_byte_length"


def test_trailing_bytes_after_the_last_tensor_are_refused() -> None:
    body, length = binary_body(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 4},
                }
            ]
        },
        b"\x00" * 12,
    )
    with pytest.raises(BadRequest, match="8 bytes after"):
        decode_request(body, length)


def test_binary_size_not_matching_the_shape_is_refused_on_decode() -> None:
    body, length = binary_body(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [3],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 8},
                }
            ]
        },
        b"\x00" * 8,
    )
    tensor = decode_request(body, length).inputs[0]
    with pytest.raises(BadRequest, match="needs 12") as caught:
        tensor.to_numpy()
    assert caught.value.code == "input_byte_length"


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("UINT8", [1, 2], "holds 2 values"),
        ("UINT8", [1, 2, 300], "outside 0..255"),
        ("UINT8", [1, 2, -1], "outside 0..255"),
        ("UINT8", [1.5, 2, 3], "integers"),
        ("FP32", ["a", "b", "c"], "numbers"),
        ("FP32", [[1, 2], [3]], "not a tensor"),
        ("FP32", None, "neither 'data'"),
        ("STRING", [1, 2, 3], "not supported"),
    ],
)
def test_json_data_that_does_not_fit_its_declaration_is_refused(datatype, data, message) -> None:
    entry = {"name": "x", "shape": [3], "datatype": datatype}
    if data is not None:
        entry["data"] = data
    tensor = decode_request(orjson.dumps({"inputs": [entry]}), None).inputs[0]
    with pytest.raises(BadRequest, match=message):
        tensor.to_numpy()


def test_classification_extension_is_refused_clearly() -> None:
    body = orjson.dumps(
        {
            "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
            "outputs": [{"name": "p", "parameters": {"classification": 2}}],
        }
    )
    with pytest.raises(BadRequest, match="classification extension"):
        decode_request(body, None)


def test_response_json_only_when_no_output_is_binary() -> None:
    probabilities = np.array([[0.25, 0.75]], dtype=np.float32)
    body, headers = encode_response(
        model_name="m",
        model_version="3",
        request_id="abc",
        outputs=[ResponseOutput("probabilities", probabilities, binary=False)],
    )
    assert headers == {"content-type": "application/json"}
    document = orjson.loads(body)
    assert document["model_name"] == "m" and document["model_version"] == "3"
    assert document["id"] == "abc"
    assert document["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75]}
    ]


def test_response_binary_outputs_follow_the_header_in_order() -> None:
    first = np.array([[0.1, 0.9]], dtype=np.float32)
    second = np.arange(4, dtype=np.float32).reshape(1, 2, 2)
    body, headers = encode_response(
        model_name="m",
        model_version="1",
        request_id=None,
        outputs=[
            ResponseOutput("a", first, binary=True),
            ResponseOutput("j", first, binary=False),
            ResponseOutput("b", second, binary=True, parameters={"activation_class": "1"}),
        ],
    )
    length = int(headers["inference-header-content-length"])
    assert headers["content-type"] == "application/octet-stream"
    document = orjson.loads(body[:length])
    assert "id" not in document
    a, j, b = document["outputs"]
    assert a["parameters"] == {"binary_data_size": 8} and "data" not in a
    assert j["data"] == pytest.approx([0.1, 0.9])
    assert b["parameters"] == {"activation_class": "1", "binary_data_size": 16}
    rest = body[length:]
    assert np.array_equal(np.frombuffer(rest[:8], "<f4"), first.ravel())
    assert np.array_equal(np.frombuffer(rest[8:], "<f4"), second.ravel())
