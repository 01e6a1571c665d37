"""The hand-built models and packages are what their docstrings promise: valid packages that
pass every check the services run, classifying as designed."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_manifest.verify import PackageError, load_package, sha256_file, verify_package
from brainscan_testsupport.onnx_models import (
    CLASSES,
    CONFUSED,
    PERFECT,
    brightness_model,
    quadrant_image,
    tiny_classifier,
)
from brainscan_testsupport.packages import quadrant_package, tiny_package, truncate_model


def run(path, images: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"image": images}), strict=True))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"dtype": "float32", "layout": "NCHW"},
        {"size": 16, "features": 6, "map_size": 4},
    ],
)
def test_a_tiny_package_passes_every_package_check(tmp_path, options) -> None:
    onnx_path, manifest = load_package(tiny_package(tmp_path / "pkg", name="x", **options))

    verify_package(onnx_path, manifest)

    assert manifest.name == "x" and manifest.classes == CLASSES
    assert manifest.onnx_sha256 == sha256_file(onnx_path)
    assert manifest.outputs.activation_map is not None


def test_the_tiny_classifier_is_the_dense_layer_on_the_mean_feature_map(tmp_path) -> None:
    """Softmax(mean(feature map) @ dense + bias): what a class activation map relies on."""
    tiny_package(tmp_path, size=16, map_size=4, seed=3)
    manifest = Manifest.load(tmp_path / MANIFEST_FILE)
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)

    outputs = run(tmp_path / MODEL_FILE, images)

    cam = manifest.outputs.activation_map
    assert outputs["feature_map"].shape == (3, 4, 4, 5)
    logits = outputs["feature_map"].mean(axis=(1, 2)) @ np.array(cam.weights) + cam.bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=1e-4, atol=1e-6)


def test_the_same_seed_builds_the_same_model_and_another_seed_does_not() -> None:
    first, second, other = (tiny_classifier(seed=seed) for seed in (1, 1, 2))
    assert first.model.SerializeToString() == second.model.SerializeToString()
    assert not np.array_equal(first.dense, other.dense)


def test_a_package_with_the_wrong_number_of_outputs_keeps_a_valid_manifest(tmp_path) -> None:
    onnx_path, manifest = load_package(tiny_package(tmp_path, num_outputs=3))
    assert len(manifest.classes) == 4
    with pytest.raises(PackageError):
        verify_package(onnx_path, manifest)


def test_a_guarded_package_flags_inputs_unlike_those_it_was_fitted_on(tmp_path) -> None:
    rng = np.random.default_rng(0)
    dark = rng.integers(0, 60, (120, 8, 8, 3), dtype=np.uint8)
    onnx_path, manifest = load_package(tiny_package(tmp_path, guard_inputs=dark))

    verify_package(onnx_path, manifest)

    assert manifest.ood is not None and manifest.ood.calibration_images == 60
    more_dark = rng.integers(0, 60, (40, 8, 8, 3), dtype=np.uint8)
    bright = rng.integers(200, 256, (10, 8, 8, 3), dtype=np.uint8)
    scores = run(onnx_path, np.concatenate([more_dark, bright]))[manifest.ood.score]
    flagged = scores > manifest.ood.threshold
    assert flagged[:40].mean() <= 0.3 and flagged[40:].all()


def test_a_truncated_package_matches_its_hash_but_fails_the_checks(tmp_path) -> None:
    truncate_model(tiny_package(tmp_path))
    onnx_path, manifest = load_package(tmp_path)
    assert manifest.onnx_sha256 == sha256_file(onnx_path)
    with pytest.raises(PackageError):
        verify_package(onnx_path, manifest)


def test_the_perfect_quadrant_package_classifies_quadrant_images_by_their_bright_quadrant(
    tmp_path,
) -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(12) % 4
    images = np.stack([quadrant_image(int(label), rng) for label in labels])
    onnx_path, manifest = quadrant_package(tmp_path / "perfect", PERFECT, name="q")
    confused, _ = quadrant_package(tmp_path / "confused", CONFUSED)

    verify_package(onnx_path, manifest)

    assert manifest.name == "q" and manifest.input.resize_filter == "nearest"
    assert (run(onnx_path, images)["probabilities"].argmax(axis=1) == labels).all()
    predicted = run(confused, images)["probabilities"].argmax(axis=1)
    # CONFUSED never says pituitary (its column is notumor's) and is right on the other three.
    assert (predicted != 3).all()
    assert (predicted[labels < 3] == labels[labels < 3]).all()


def test_the_brightness_model_ranks_the_last_class_higher_the_brighter_the_image(
    tmp_path,
) -> None:
    path = tmp_path / MODEL_FILE
    onnx.save(brightness_model(scale=0.02), str(path))
    images = np.stack([np.full((8, 8, 3), value, np.uint8) for value in (0, 100, 250)])
    probabilities = run(path, images)["probabilities"]
    np.testing.assert_allclose(probabilities[0], 0.25, rtol=1e-6)
    assert np.all(np.diff(probabilities[:, -1]) > 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
