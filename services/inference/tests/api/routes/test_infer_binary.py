"""The binary tensor data extension, driven by a standard v2 client (tritonclient.http)."""

from __future__ import annotations

import gzip

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest
import tritonclient.http as triton
from brainscan_manifest.verify import load_package
from tritonclient.utils import InferenceServerException


@pytest.fixture(scope="module")
def client(shared_server):
    client = triton.InferenceServerClient(shared_server.url.removeprefix("http://"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def session(shared_server):
    onnx_path, _ = load_package(shared_server.app.state.settings.model_dir / "1")
    return ort.InferenceSession(str(onnx_path))


def image_input(images: np.ndarray, binary: bool = True) -> triton.InferInput:
    tensor = triton.InferInput("image", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images, binary_data=binary)
    return tensor


def test_health_and_metadata_through_the_client(client) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("tiny")
    assert client.is_model_ready("tiny", "1")
    assert not client.is_model_ready("other")
    metadata = client.get_model_metadata("tiny")
    assert metadata["inputs"][0]["datatype"] == "UINT8"
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]


def test_binary_input_and_binary_outputs(client, session, images) -> None:
    batch = images(4)
    result = client.infer(
        "tiny",
        [image_input(batch)],
        outputs=[
            triton.InferRequestedOutput("probabilities", binary_data=True),
            triton.InferRequestedOutput("feature_map", binary_data=True),
        ],
        request_id="bin-1",
    )
    expected_probs, expected_fmap = session.run(["probabilities", "feature_map"], {"image": batch})
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected_probs, rtol=1e-5)
    np.testing.assert_allclose(result.as_numpy("feature_map"), expected_fmap, rtol=1e-5)
    response = result.get_response()
    assert response["id"] == "bin-1" and response["model_version"] == "1"


def test_no_named_outputs_means_binary_defaults(client, session, images) -> None:
    batch = images(1)
    result = client.infer("tiny", [image_input(batch)])
    (expected,) = session.run(["probabilities"], {"image": batch})
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5)
    assert result.get_output("probabilities")["parameters"]["binary_data_size"] == 16


def test_json_input_with_a_binary_output_and_a_json_output(client, session, images) -> None:
    batch = images(2)
    result = client.infer(
        "tiny",
        [image_input(batch, binary=False)],
        outputs=[
            triton.InferRequestedOutput("probabilities", binary_data=False),
            triton.InferRequestedOutput("activation_map", binary_data=True),
        ],
        model_version="1",
    )
    (expected,) = session.run(["probabilities"], {"image": batch})
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5)
    assert result.as_numpy("activation_map").shape == (2, 8, 8)


def test_activation_map_as_a_custom_parameter(client, images) -> None:
    result = client.infer(
        "tiny",
        [image_input(images(1))],
        parameters={"activation_map": True, "activation_class": "glioma"},
    )
    cam = result.as_numpy("activation_map")
    assert cam.shape == (1, 8, 8) and cam.dtype == np.float32
    assert cam.min() >= 0.0 and cam.max() <= 1.0
    assert result.get_output("activation_map")["parameters"]["activation_class"] == "0"


def test_gzip_compressed_requests_are_accepted(client, session, images) -> None:
    batch = images(2)
    result = client.infer("tiny", [image_input(batch)], request_compression_algorithm="gzip")
    (expected,) = session.run(["probabilities"], {"image": batch})
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, rtol=1e-5)


def test_errors_reach_the_client_as_its_exception_with_our_message(client, images) -> None:
    wrong = triton.InferInput("pixels", [1, 8, 8, 3], "UINT8")
    wrong.set_data_from_numpy(images(1))
    with pytest.raises(InferenceServerException, match="unknown input 'pixels'") as caught:
        client.infer("tiny", [wrong])
    assert caught.value.status() == "400"
    with pytest.raises(InferenceServerException, match="unknown model") as caught:
        client.infer("other", [image_input(images(1))])
    assert caught.value.status() == "404"


def test_raw_binary_response_layout(shared_server, images) -> None:
    """Without any client library: header length, then the tensors in output order."""
    batch = images(1)
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1, 8, 8, 3],
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": batch.nbytes},
                }
            ],
            "outputs": [
                {"name": "probabilities", "parameters": {"binary_data": True}},
                {"name": "activation_map", "parameters": {"binary_data": True}},
            ],
        }
    )
    response = httpx.post(
        f"{shared_server.url}/v2/models/tiny/infer",
        content=gzip.compress(header + batch.tobytes()),
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    document = orjson.loads(response.content[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in document["outputs"]]
    assert sizes == [16, 256]
    assert len(response.content) == length + sum(sizes)
    probabilities = np.frombuffer(response.content[length : length + 16], "<f4")
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
