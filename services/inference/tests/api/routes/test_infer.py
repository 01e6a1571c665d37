"""Inference with JSON tensors: results equal onnxruntime's, batches, outputs, activation maps."""

from __future__ import annotations

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from brainscan_inference.activation_map import class_activation_maps
from brainscan_manifest.verify import load_package


def infer(server, body: dict, path: str = "/v2/models/tiny/infer") -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=10)


def image_input(images: np.ndarray) -> dict:
    return {
        "name": "image",
        "shape": list(images.shape),
        "datatype": "UINT8",
        "data": images.ravel().tolist(),
    }


def outputs_by_name(response: httpx.Response) -> dict[str, np.ndarray]:
    return {
        o["name"]: np.asarray(o["data"], np.float32).reshape(o["shape"])
        for o in response.json()["outputs"]
    }


@pytest.fixture(scope="module")
def reference(shared_server):
    """The same package run directly by onnxruntime."""
    directory = shared_server.app.state.settings.model_dir / "1"
    onnx_path, manifest = load_package(directory)
    return ort.InferenceSession(str(onnx_path)), manifest


def test_probabilities_equal_onnxruntime_on_the_same_images(shared_server, reference, images):
    session, _ = reference
    batch = images(3)
    response = infer(shared_server, {"id": "req-7", "inputs": [image_input(batch)]})
    assert response.status_code == 200
    body = response.json()
    assert body["model_name"] == "tiny" and body["model_version"] == "1" and body["id"] == "req-7"
    assert [o["name"] for o in body["outputs"]] == ["probabilities"]  # the default output
    (expected,) = session.run(["probabilities"], {"image": batch})
    np.testing.assert_allclose(outputs_by_name(response)["probabilities"], expected, rtol=1e-5)


def test_the_version_endpoint_serves_the_same_model(shared_server, images) -> None:
    body = {"inputs": [image_input(images(1))]}
    by_version = infer(shared_server, body, "/v2/models/tiny/versions/1/infer")
    assert by_version.status_code == 200
    assert by_version.json()["outputs"] == infer(shared_server, body).json()["outputs"]


def test_named_outputs_come_back_in_the_order_asked(shared_server, reference, images) -> None:
    session, _ = reference
    batch = images(2)
    response = infer(
        shared_server,
        {
            "inputs": [image_input(batch)],
            "outputs": [{"name": "feature_map"}, {"name": "probabilities"}],
        },
    )
    assert [o["name"] for o in response.json()["outputs"]] == ["feature_map", "probabilities"]
    (fmap,) = session.run(["feature_map"], {"image": batch})
    np.testing.assert_allclose(outputs_by_name(response)["feature_map"], fmap, rtol=1e-5)


def test_activation_map_parameter_gives_maps_of_the_predicted_class(
    shared_server, reference, images
) -> None:
    session, manifest = reference
    batch = images(3, seed=9)
    response = infer(
        shared_server, {"inputs": [image_input(batch)], "parameters": {"activation_map": True}}
    )
    assert response.status_code == 200
    out = outputs_by_name(response)
    probabilities, fmap = session.run(["probabilities", "feature_map"], {"image": batch})
    predicted = probabilities.argmax(axis=1)
    weights = np.asarray(manifest.outputs.activation_map.weights, np.float32)
    np.testing.assert_allclose(
        out["activation_map"], class_activation_maps(fmap, weights, predicted), atol=1e-5
    )
    assert out["activation_map"].shape == (3, 8, 8)
    cam_entry = response.json()["outputs"][1]
    assert cam_entry["parameters"]["activation_class"] == ",".join(map(str, predicted))


@pytest.mark.parametrize("requested", [2, "notumor"])
def test_activation_class_by_index_or_name(shared_server, reference, images, requested) -> None:
    session, manifest = reference
    batch = images(1, seed=3)
    response = infer(
        shared_server,
        {
            "inputs": [image_input(batch)],
            "outputs": [{"name": "activation_map", "parameters": {"activation_class": requested}}],
        },
    )
    assert response.status_code == 200
    assert [o["name"] for o in response.json()["outputs"]] == ["activation_map"]
    (fmap,) = session.run(["feature_map"], {"image": batch})
    weights = np.asarray(manifest.outputs.activation_map.weights, np.float32)
    np.testing.assert_allclose(
        outputs_by_name(response)["activation_map"],
        class_activation_maps(fmap, weights, np.array([2])),
        atol=1e-5,
    )


def test_a_float_nchw_model_is_served_as_its_manifest_says(
    serve, settings_factory, tmp_path, package_factory
) -> None:
    package_factory(tmp_path / "models" / "1", dtype="float32", layout="NCHW")
    server = serve(settings_factory(tmp_path / "models"))
    meta = httpx.get(f"{server.url}/v2/models/tiny").json()
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 3, 8, 8]}]
    assert meta["outputs"][2] == {"name": "activation_map", "datatype": "FP32", "shape": [-1, 8, 8]}
    pixels = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    response = infer(
        server,
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [2, 3, 8, 8],
                    "datatype": "FP32",
                    "data": pixels.ravel().tolist(),
                }
            ],
            "parameters": {"activation_map": True},
        },
    )
    assert response.status_code == 200
    out = outputs_by_name(response)
    assert out["probabilities"].shape == (2, 4)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
    assert out["activation_map"].shape == (2, 8, 8)
