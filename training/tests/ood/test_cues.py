"""The project's cue plan finds its MobileNetV2 layers in the exported graph, in their layout,
and a guard built on it runs on the exported package."""

from __future__ import annotations

import numpy as np
import pytest
from brainscan_manifest.guard_fit import run_graph
from brainscan_manifest.guard_graph import add_feature_outputs, add_input_view
from brainscan_manifest.verify import load_package, verify_package
from brainscan_training.export import export_package
from brainscan_training.ood.build import GuardSettings, fit_package_guard, write_guarded_package
from brainscan_training.ood.cues import (
    FEATURE_LAYERS,
    TEXTURE_LAYERS,
    CuePlanError,
    generic_cues,
    layer_tensor,
    mobilenet_cues,
)

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


@pytest.fixture(scope="module")
def exported(trained_tiny_model, tmp_path_factory):
    model, images, _ = trained_tiny_model
    directory = tmp_path_factory.mktemp("export")
    export_package(model, directory, CLASSES, name="tiny")
    onnx_path, manifest = load_package(directory)
    import onnx

    return directory, onnx.load(str(onnx_path)), manifest, images


def test_each_layer_is_found_once_and_planar(exported):
    _, model, _, _ = exported
    for layer in TEXTURE_LAYERS + FEATURE_LAYERS:
        pooling = layer_tensor(model, layer)
        assert f"/{layer}" in pooling.tensor and pooling.layout == "NCHW" and pooling.std
    with pytest.raises(CuePlanError, match="0 outputs of layer 'block_99_add'"):
        layer_tensor(model, "block_99_add")


def test_the_pooled_statistics_are_per_channel(exported):
    """Mean and std over the spatial axes: one pair per channel of each layer."""
    _, model, manifest, images = exported
    viewed = add_input_view(model, manifest.input)
    cues = mobilenet_cues(viewed, manifest)
    assert [c.features.name for c in cues] == ["pixels", "texture", "features", "confidence"]
    names = [c.features.output for c in cues]
    features = run_graph(add_feature_outputs(viewed, [c.features for c in cues]), "image",
                         images[:4], names)  # fmt: skip
    # Conv1 (16 channels at alpha 0.35) and block_2_add (8): 2 x (16 + 8) texture statistics.
    assert features["ood_features.texture"].shape == (4, 48)
    assert features["ood_features.confidence"].shape == (4, 1)
    assert np.all(np.isfinite(features["ood_features.features"]))


def test_generic_cues_use_the_declared_feature_map(exported):
    _, model, manifest, _ = exported
    names = [c.features.name for c in generic_cues(model, manifest)]
    assert names == ["pixels", "feature_map", "confidence"]


def test_a_guard_on_the_exported_model_flags_a_blank_image(exported, tmp_path):
    directory, _, _, images = exported
    settings = GuardSettings(appearance=True, appearance_epochs=1, appearance_repeats=1)
    manifest, fit = fit_package_guard(
        directory, mobilenet_cues, images[:200], images[200:], settings, split="test"
    )
    assert [c.name for c in fit.spec.cue_names][-1] == "appearance"
    path, guarded = write_guarded_package(tmp_path / "guarded", fit.model, manifest, fit.spec)
    verify_package(path, guarded)
    import onnx

    blank = np.zeros((1, *images.shape[1:]), np.uint8)
    out = run_graph(onnx.load(str(path)), "image", blank, ["ood_score", "probabilities"])
    assert out["ood_score"][0] > guarded.ood.threshold
