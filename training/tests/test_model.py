"""The Keras model: input contract, outputs, and which layers train in each phase."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from brainscan_training.model import (
    BATCHNORM_MOMENTUM,
    backbone_of,
    build_model,
    classifier_weights,
    set_backbone_trainable,
    with_feature_map,
)


@pytest.fixture(scope="module")
def model():
    return build_model(4, image_size=64, alpha=0.35)


def test_takes_raw_pixels_and_outputs_probabilities(model):
    assert model.input_shape == (None, 64, 64, 3)
    probabilities = model.predict(np.full((3, 64, 64, 3), 200.0, np.float32), verbose=0)
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_scaling_to_unit_range_is_inside_the_model(model):
    rescale = model.get_layer("scale_to_unit_range")
    assert rescale.scale == pytest.approx(1 / 127.5) and rescale.offset == pytest.approx(-1.0)


def test_feature_map_output_matches_the_head(model):
    two = with_feature_map(model)
    probabilities, features = two.predict(np.zeros((2, 64, 64, 3), np.float32), verbose=0)
    weights, bias = classifier_weights(model)
    assert features.shape == (2, 2, 2, 1280)
    assert np.array(weights).shape == (1280, 4) and len(bias) == 4
    # The head is GAP -> dense -> softmax, so the feature map reproduces the probabilities.
    logits = features.mean(axis=(1, 2)) @ np.array(weights) + np.array(bias)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_batchnorm_momentum_suits_short_runs(model):
    norms = [
        layer
        for layer in backbone_of(model).layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert norms and all(layer.momentum == BATCHNORM_MOMENTUM for layer in norms)


def test_backbone_freezing_for_each_phase():
    model = build_model(4, image_size=32, alpha=0.35)
    backbone = backbone_of(model)
    set_backbone_trainable(model, 0)
    assert not backbone.trainable_weights
    set_backbone_trainable(model, 10)
    trainable = [layer for layer in backbone.layers if layer.trainable]
    assert trainable and all(layer in backbone.layers[-10:] for layer in trainable)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in trainable)
    set_backbone_trainable(model, None)
    assert len(backbone.trainable_weights) > 100
