"""Model metadata, readiness and manifest endpoints, by name and by version."""

from __future__ import annotations

import httpx
import pytest
from brainscan_manifest import Manifest
from onnx import TensorProto


def test_metadata_describes_inputs_outputs_and_version(shared_server) -> None:
    body = httpx.get(f"{shared_server.url}/v2/models/tiny").json()
    assert body == {
        "name": "tiny",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "image", "datatype": "UINT8", "shape": [-1, 8, 8, 3]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 4]},
            {"name": "feature_map", "datatype": "FP32", "shape": [-1, 8, 8, 5]},
            {"name": "activation_map", "datatype": "FP32", "shape": [-1, 8, 8]},
        ],
    }
    assert httpx.get(f"{shared_server.url}/v2/models/tiny/versions/1").json() == body


def test_ready_by_name_and_by_version(shared_server) -> None:
    for path in ("/v2/models/tiny/ready", "/v2/models/tiny/versions/1/ready"):
        response = httpx.get(shared_server.url + path)
        assert response.status_code == 200
        assert response.json() == {"name": "tiny", "version": "1", "ready": True}


def test_manifest_is_the_package_manifest_with_the_served_version(shared_server, classes) -> None:
    for path in ("/v2/models/tiny/manifest", "/v2/models/tiny/versions/1/manifest"):
        manifest = Manifest.model_validate(httpx.get(shared_server.url + path).json())
        assert manifest.version == "1"
        assert manifest.classes == classes
        assert manifest.outputs.activation_map is not None


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v2/models/other", "model_not_found"),
        ("/v2/models/other/ready", "model_not_found"),
        ("/v2/models/other/manifest", "model_not_found"),
        ("/v2/models/tiny/versions/2", "version_not_found"),
        ("/v2/models/tiny/versions/2/ready", "version_not_found"),
        ("/v2/models/tiny/versions/2/manifest", "version_not_found"),
        ("/v2/models/other/challenger/manifest", "model_not_found"),
        ("/v2/models/tiny/challenger/manifest", "no_challenger"),
    ],
)
def test_unknown_model_or_version_is_404(shared_server, path: str, code: str) -> None:
    response = httpx.get(shared_server.url + path)
    assert response.status_code == 404
    assert response.json()["code"] == code
    assert response.json()["error"]


def test_metadata_before_any_model_is_503_with_retry_after(serve, settings_factory, tmp_path):
    server = serve(settings_factory(tmp_path / "empty"), ready=False)
    response = httpx.get(f"{server.url}/v2/models/tiny")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "not_ready"


@pytest.mark.parametrize(
    ("probabilities", "feature_map"),
    [(TensorProto.DOUBLE, TensorProto.INT64), (TensorProto.FLOAT, TensorProto.UINT8)],
)
def test_metadata_gives_the_datatypes_the_model_really_outputs(
    serve, settings_factory, package_factory, tmp_path, images, probabilities, feature_map
) -> None:
    package_factory(
        tmp_path / "models" / "1", probabilities_dtype=probabilities, feature_map_dtype=feature_map
    )
    server = serve(settings_factory(tmp_path / "models"))
    metadata = httpx.get(f"{server.url}/v2/models/tiny").json()
    datatypes = {o["name"]: o["datatype"] for o in metadata["outputs"]}
    v2 = {TensorProto.DOUBLE: "FP64", TensorProto.FLOAT: "FP32", TensorProto.INT64: "INT64"}
    v2[TensorProto.UINT8] = "UINT8"
    assert datatypes == {
        "probabilities": v2[probabilities],
        "feature_map": v2[feature_map],
        "activation_map": "FP32",  # computed by the service, always FP32
    }
    # ...and the answers carry the same datatypes as the metadata promised.
    batch = images(1)
    body = {
        "inputs": [
            {
                "name": "image",
                "shape": list(batch.shape),
                "datatype": "UINT8",
                "data": batch.ravel().tolist(),
            }
        ],
        "outputs": [{"name": name} for name in datatypes],
    }
    answer = httpx.post(f"{server.url}/v2/models/tiny/infer", json=body).json()
    assert {o["name"]: o["datatype"] for o in answer["outputs"]} == datatypes


def test_a_guarded_model_lists_and_answers_its_guard_outputs(
    serve, settings_factory, package_factory, tmp_path, images
) -> None:
    """The guard's outputs are plain v2 outputs: in the metadata, and asked for by name."""
    package_factory(tmp_path / "models" / "1", guard=True)
    server = serve(settings_factory(tmp_path / "models"))
    outputs = {o["name"]: o for o in httpx.get(f"{server.url}/v2/models/tiny").json()["outputs"]}
    assert outputs["ood_score"] == {"name": "ood_score", "datatype": "FP32", "shape": [-1]}
    assert outputs["ood_cues"]["shape"] == [-1, 2]
    pixels = images(2)
    body = {
        "inputs": [
            {"name": "image", "shape": list(pixels.shape), "datatype": "UINT8",
             "data": pixels.flatten().tolist()}
        ],
        "outputs": [{"name": "ood_score"}, {"name": "probabilities"}],
    }  # fmt: skip
    answer = httpx.post(f"{server.url}/v2/models/tiny/infer", json=body).json()
    assert [o["name"] for o in answer["outputs"]] == ["ood_score", "probabilities"]
    assert answer["outputs"][0]["shape"] == [2]
    manifest = httpx.get(f"{server.url}/v2/models/tiny/manifest").json()
    assert manifest["ood"]["cues"] == "ood_cues"
