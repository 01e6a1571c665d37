"""The model package checks every component runs before serving or promoting a model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from brainscan_manifest import InputSpec, Manifest, OutputSpec
from brainscan_manifest.preprocess import to_input_array
from brainscan_manifest.verify import PackageError, load_package, sha256_file, verify_package
from brainscan_testsupport.onnx_models import brightness_model
from onnx import TensorProto, helper
from PIL import Image
from pydantic import ValidationError


def package(tmp_path, model=None, classes=("a", "b", "c", "d"), **input_overrides):
    path = tmp_path / "model.onnx"
    onnx.save(model or brightness_model(), str(path))
    spec = {"name": "image", "height": 8, "width": 8, **input_overrides}
    manifest = Manifest(
        name="m",
        classes=list(classes),
        input=InputSpec(**spec),
        outputs=OutputSpec(probabilities="probabilities"),
        onnx_sha256=sha256_file(path),
    )
    manifest.save(tmp_path / "manifest.json")
    return path, manifest


def test_a_good_package_verifies(tmp_path):
    path, manifest = package(tmp_path)
    assert verify_package(path, manifest).manifest == manifest
    assert load_package(tmp_path) == (path, manifest)


def test_name_and_version_must_be_what_the_caller_expects(tmp_path):
    path, manifest = package(tmp_path)
    with pytest.raises(PackageError, match="names model 'm', expected 'other'"):
        verify_package(path, manifest, expected_name="other")
    versioned = manifest.with_version("3")
    with pytest.raises(PackageError, match="says version '3', expected '4'"):
        verify_package(path, versioned, expected_version="4")
    # a manifest written before registration has no version: any registry version fits it
    assert verify_package(path, manifest, expected_name="m", expected_version="4")
    assert verify_package(path, versioned, expected_version="3")


def test_the_session_the_checks_ran_on_is_handed_on(tmp_path):
    import onnxruntime as ort

    path, manifest = package(tmp_path)
    built = []

    def factory(onnx_path):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        built.append(ort.InferenceSession(str(onnx_path), options))
        return built[-1]

    verified = verify_package(path, manifest, session_factory=factory)
    assert len(built) == 1 and verified.session is built[0]
    assert verified.sha256 == sha256_file(path)
    assert verify_package(path, manifest, smoke_inference=False).session is None


def test_a_session_factory_that_fails_refuses_the_package(tmp_path):
    path, manifest = package(tmp_path)

    def broken(onnx_path):
        raise RuntimeError("no memory for this arena")

    with pytest.raises(PackageError, match="cannot load the model: no memory"):
        verify_package(path, manifest, session_factory=broken)


def test_truncated_file_fails_the_hash(tmp_path):
    path, manifest = package(tmp_path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(PackageError, match="sha256 mismatch"):
        verify_package(path, manifest)


def test_registry_hash_must_match_too(tmp_path):
    path, manifest = package(tmp_path)
    with pytest.raises(PackageError, match="registry says"):
        verify_package(path, manifest, expected_sha256="f" * 64)


def test_truncated_file_with_a_matching_hash_fails_the_checker(tmp_path):
    path, manifest = package(tmp_path)
    path.write_bytes(path.read_bytes()[:60])
    manifest = manifest.model_copy(update={"onnx_sha256": sha256_file(path)})
    with pytest.raises(PackageError, match="ONNX checker failed"):
        verify_package(path, manifest)


def test_wrong_class_count_is_refused(tmp_path):
    path, manifest = package(tmp_path, brightness_model(num_classes=3))
    with pytest.raises(PackageError, match="3 probability outputs, manifest lists 4 classes"):
        verify_package(path, manifest)


def test_wrong_input_name_dtype_and_size_are_refused(tmp_path):
    path, manifest = package(tmp_path, name="pixels")
    with pytest.raises(PackageError, match="input 'pixels' not in model"):
        verify_package(path, manifest)
    path, manifest = package(tmp_path, dtype="float32")
    with pytest.raises(PackageError, match="dtype does not match"):
        verify_package(path, manifest)
    path, manifest = package(tmp_path, height=16, width=16)
    with pytest.raises(PackageError, match="input shape"):
        verify_package(path, manifest)


def test_non_finite_outputs_fail_the_smoke_inference(tmp_path):
    path, manifest = package(tmp_path, brightness_model(scale=float("inf")))
    with pytest.raises(PackageError, match="smoke inference"):
        verify_package(path, manifest)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(PackageError, match="manifest missing"):
        load_package(tmp_path)


def test_manifest_rejects_inconsistent_fields():
    base = {"name": "m", "classes": ["a", "b"], "onnx_sha256": "0" * 64,
            "outputs": {"probabilities": "p"}}  # fmt: skip
    with pytest.raises(ValidationError, match="does not match channels"):
        Manifest(**base, input={"name": "i", "height": 4, "width": 4, "color": "L"})
    with pytest.raises(ValidationError, match="uint8 input takes raw pixels"):
        Manifest(**base, input={"name": "i", "height": 4, "width": 4, "scale": 0.5})
    with pytest.raises(ValidationError, match="unique"):
        Manifest(**{**base, "classes": ["a", "a"]}, input={"name": "i", "height": 4, "width": 4})


def test_tags_are_flat_strings_without_cam_weights(tmp_path):
    _, manifest = package(tmp_path)
    tags = manifest.to_tags()
    assert all(isinstance(v, str) for v in tags.values())
    assert tags["manifest.classes"] == '["a", "b", "c", "d"]'


def test_preprocess_follows_the_manifest():
    image = Image.fromarray(np.full((20, 30), 100, np.uint8), mode="L")
    rgb = to_input_array(image, InputSpec(name="i", height=8, width=8))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8 and int(rgb[0, 0, 0]) == 100
    spec = InputSpec(name="i", height=4, width=6, layout="NCHW", dtype="float32",
                     scale=1 / 127.5, offset=-1.0)  # fmt: skip
    scaled = to_input_array(image, spec)
    assert scaled.shape == (3, 4, 6) and scaled.dtype == np.float32
    assert scaled[0, 0, 0] == pytest.approx(100 / 127.5 - 1)


def test_activation_map_weights_must_fit_the_feature_map(tmp_path):
    model = brightness_model()
    # Expose the cast input as a 4-D "feature map" with 3 channels.
    model.graph.output.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, 8, 3]))
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))

    def manifest_with(rows: int) -> Manifest:
        return Manifest(
            name="m",
            classes=["a", "b", "c", "d"],
            input=InputSpec(name="image", height=8, width=8),
            outputs=OutputSpec(
                probabilities="probabilities",
                activation_map={
                    "feature_map": "x",
                    "weights": [[0.0] * 4] * rows,
                    "bias": [0.0] * 4,
                },
            ),
            onnx_sha256=sha256_file(path),
        )

    verify_package(path, manifest_with(3))
    with pytest.raises(PackageError, match=r"3 channels, activation_map\.weights has 5 rows"):
        verify_package(path, manifest_with(5))


def test_the_registry_sha256_tag_is_one_the_manifest_writes(tmp_path):
    from brainscan_manifest.registry_contract import PACKAGE_FILES, SHA256_TAG

    _, manifest = package(tmp_path)
    assert manifest.to_tags()[SHA256_TAG] == manifest.onnx_sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PACKAGE_FILES)
