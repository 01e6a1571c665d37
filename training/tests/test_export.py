"""ONNX export of a trained model: parity with Keras, the uint8 contract, CAM, the manifest."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from brainscan_manifest import InputSpec, Lineage, Manifest
from brainscan_manifest.verify import load_package, sha256_file, verify_package
from brainscan_training.export import (
    FEATURE_MAP_OUTPUT,
    INPUT_NAME,
    PROBABILITIES_OUTPUT,
    check_parity,
    export_package,
)
from brainscan_training.model import with_feature_map

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


@pytest.fixture(scope="module")
def package(trained_tiny_model, tmp_path_factory):
    model, images, _labels = trained_tiny_model
    out = tmp_path_factory.mktemp("export")
    onnx_path, manifest = export_package(
        model,
        out,
        CLASSES,
        name="tiny",
        default_threshold=0.55,
        metrics={"macro_f1": 0.9},
        lineage=Lineage(git_commit="abc123", data_hash="d41d8", params={"alpha": 0.35}),
    )
    return model, images, onnx_path, manifest


def test_trained_model_is_not_trivially_uniform(package):
    model, images, _, _ = package
    probabilities = model.predict(images[:32].astype(np.float32), verbose=0)
    assert probabilities.max(axis=1).mean() > 0.4  # 0.25 would make parity meaningless


def test_parity_with_keras_on_a_trained_model(package):
    model, images, onnx_path, _ = package
    report = check_parity(model, onnx_path, images[:64])
    assert report.passed
    assert report.max_abs_diff_probabilities < 1e-4
    assert report.label_agreement == 1.0


def test_parity_failure_is_detected(package, tmp_path):
    model, images, onnx_path, _ = package
    tampered = onnx.load(str(onnx_path))
    for init in tampered.graph.initializer:  # shift the classifier bias: a wrong model
        if init.dims == [4] and init.data_type == onnx.TensorProto.FLOAT:
            values = onnx.numpy_helper.to_array(init) + np.array([3, 0, 0, 0], np.float32)
            init.CopyFrom(onnx.numpy_helper.from_array(values, init.name))
    onnx.save(tampered, str(tmp_path / "bad.onnx"))
    assert not check_parity(model, tmp_path / "bad.onnx", images[:32]).passed


def test_onnx_takes_uint8_pixels_with_a_dynamic_batch(package):
    _, images, onnx_path, _ = package
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (image_input,) = session.get_inputs()
    assert image_input.name == INPUT_NAME and image_input.type == "tensor(uint8)"
    assert [o.name for o in session.get_outputs()] == [PROBABILITIES_OUTPUT, FEATURE_MAP_OUTPUT]
    for batch in (1, 5):
        probabilities, features = session.run(None, {INPUT_NAME: images[:batch]})
        assert probabilities.shape == (batch, 4) and features.shape[0] == batch
    opset = {o.domain: o.version for o in onnx.load(str(onnx_path)).opset_import}[""]
    assert opset >= 17


def test_class_activation_map_from_onnx_outputs_matches_keras(package):
    model, images, onnx_path, manifest = package
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    _, features = session.run(None, {INPUT_NAME: images[:4]})
    _, keras_features = with_feature_map(model).predict(images[:4].astype(np.float32), verbose=0)
    weights = np.array(manifest.outputs.activation_map.weights)
    cam_onnx = np.einsum("nhwk,kc->nhwc", features, weights)
    cam_keras = np.einsum("nhwk,kc->nhwc", keras_features, weights)
    np.testing.assert_allclose(cam_onnx, cam_keras, atol=1e-3)


def test_manifest_is_complete_and_verifies(package):
    _, _, onnx_path, manifest = package
    loaded_path, loaded = load_package(onnx_path.parent)
    assert loaded == manifest
    assert manifest.classes == CLASSES
    assert manifest.input.model_dump() == {
        "name": "image", "height": 32, "width": 32, "channels": 3, "color": "RGB",
        "layout": "NHWC", "dtype": "uint8", "scale": 1.0, "offset": 0.0,
        "resize_filter": "bilinear",
    }  # fmt: skip
    assert manifest.outputs.probabilities == "probabilities"
    assert manifest.outputs.activation_map.feature_map == "feature_map"
    assert manifest.default_threshold == 0.55
    assert manifest.metrics == {"macro_f1": 0.9}
    assert manifest.lineage.git_commit == "abc123" and manifest.lineage.data_hash == "d41d8"
    assert manifest.onnx_sha256 == sha256_file(loaded_path)
    verify_package(loaded_path, loaded)
    assert Manifest.model_validate_json(manifest.model_dump_json()) == manifest


def test_training_resize_filter_reaches_the_manifest(package, tmp_path):
    model, _, _, _ = package
    spec = InputSpec(name="image", height=32, width=32, resize_filter="bicubic")
    _, manifest = export_package(model, tmp_path, CLASSES, input_spec=spec)
    assert manifest.input.resize_filter == "bicubic"
    wrong = InputSpec(name="image", height=64, width=64)
    with pytest.raises(ValueError, match="does not match the model"):
        export_package(model, tmp_path / "wrong", CLASSES, input_spec=wrong)
