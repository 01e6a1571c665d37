"""A client's requests and a client's reading of responses, checked against the wire layout
and against a standard v2 client (tritonclient.http) building and reading the same bodies."""

import json

import numpy as np
import pytest
import tritonclient.http as triton
from brainscan_v2protocol import HEADER_LENGTH, decode_response, encode_request
from v2protocol_bodies import binary_response


def test_request_is_a_json_header_followed_by_raw_bytes():
    tensor = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    body, headers = encode_request(
        {"image": tensor}, ["probabilities"], request_id="r1", parameters={"activation_map": True}
    )
    size = int(headers[HEADER_LENGTH])
    assert headers["content-type"] == "application/octet-stream"
    document = json.loads(body[:size])
    assert document["id"] == "r1"
    assert document["parameters"] == {"activation_map": True}
    (spec,) = document["inputs"]
    assert spec == {
        "name": "image",
        "shape": [2, 4, 4, 3],
        "datatype": "UINT8",
        "parameters": {"binary_data_size": tensor.size},
    }
    assert document["outputs"] == [{"name": "probabilities", "parameters": {"binary_data": True}}]
    assert body[size:] == tensor.tobytes()


def test_several_inputs_follow_the_header_in_order():
    a, b = np.array([1, 2], np.uint8), np.array([[3.0]], np.float64)
    body, headers = encode_request({"a": a, "b": b}, [])
    size = int(headers[HEADER_LENGTH])
    sizes = [i["parameters"]["binary_data_size"] for i in json.loads(body[:size])["inputs"]]
    assert sizes == [2, 8]
    assert body[size:] == a.tobytes() + b.astype("<f8").tobytes()


def test_float_and_big_endian_tensors_travel_little_endian():
    tensor = np.array([[1.5, -2.0]], dtype=">f4")
    body, headers = encode_request({"x": tensor}, ["y"])
    size = int(headers[HEADER_LENGTH])
    assert json.loads(body[:size])["inputs"][0]["datatype"] == "FP32"
    np.testing.assert_array_equal(np.frombuffer(body[size:], "<f4"), [1.5, -2.0])


def test_a_standard_client_reads_the_request_as_it_was_meant():
    # tritonclient builds its own body for the same tensor: the layouts must agree byte for byte
    # in the tensor part and in every field of the header that both set.
    tensor = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    body, headers = encode_request({"image": tensor}, ["probabilities"])
    theirs = triton.InferInput("image", list(tensor.shape), "FP32")
    theirs.set_data_from_numpy(tensor, binary_data=True)
    output = triton.InferRequestedOutput("probabilities", binary_data=True)
    their_body, their_size = triton.InferenceServerClient.generate_request_body([theirs], [output])
    size = int(headers[HEADER_LENGTH])
    assert body[size:] == their_body[their_size:]
    ours, their_doc = json.loads(body[:size]), json.loads(their_body[:their_size])
    assert ours["inputs"] == their_doc["inputs"]
    assert ours["outputs"] == their_doc["outputs"]


def test_binary_response_is_decoded_in_output_order():
    probs = np.array([[0.1, 0.7, 0.2]], dtype=np.float32)
    cam = np.linspace(0, 1, 16, dtype=np.float32).reshape(1, 4, 4)
    body, size = binary_response({"probabilities": probs, "activation_map": cam})
    result = decode_response(body, size)
    assert (result.model_name, result.model_version) == ("m", "3")
    np.testing.assert_array_equal(result.outputs["probabilities"], probs)
    np.testing.assert_array_equal(result.outputs["activation_map"], cam)
    assert result.output_parameters["activation_map"] == {"activation_class": "1"}
    # and a standard client reads the same body the same way
    theirs = triton.InferResult.from_response_body(body, header_length=int(size))
    np.testing.assert_array_equal(theirs.as_numpy("activation_map"), cam)


def test_json_response_is_decoded():
    document = {
        "model_name": "m",
        "model_version": "1",
        "outputs": [{"name": "p", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75]}],
    }
    result = decode_response(json.dumps(document).encode(), None)
    assert result.outputs["p"].tolist() == [[0.25, 0.75]]
    assert result.outputs["p"].dtype == np.float32


@pytest.mark.parametrize(
    ("body", "header_length", "says"),
    [
        (
            b'{"outputs": [{"name": "p", "datatype": "FP32", "shape": [1, 4], '
            b'"parameters": {"binary_data_size": 16}}]}',
            None,
            "runs past the end",
        ),
        (b"{}", None, "not a v2 inference response"),
        (b"{not json", None, "not a v2 inference response"),
        (b'{"outputs": []}', "999", "outside the body"),
        (b'{"outputs": []}', "twelve", "must be an integer"),
        (
            b'{"outputs": [{"name": "p", "datatype": "BF16", "shape": [1], "data": [1]}]}',
            None,
            "'BF16' is not supported",
        ),
        (
            b'{"outputs": [{"name": "p", "datatype": "FP32", "shape": [3], "data": [1, 2]}]}',
            None,
            "2 values for shape [3]",
        ),
    ],
)
def test_malformed_responses_raise_value_errors_that_say_what_is_wrong(body, header_length, says):
    with pytest.raises(ValueError) as raised:
        decode_response(body, header_length)
    assert says in str(raised.value)
