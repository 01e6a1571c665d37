"""Class activation maps: the CAM formula, both layouts, scaling to 0..1, misfits named."""

from __future__ import annotations

import re

import numpy as np
import pytest
from brainscan_inference.activation_map import (
    ActivationMapError,
    ActivationMapper,
    class_activation_maps,
)
from brainscan_manifest import ActivationMapSpec


def reference_cam(feature_map: np.ndarray, weights: np.ndarray, c: int) -> np.ndarray:
    """sum_k feature_map[..., k] * weights[k][c], written as the plain loop."""
    h, w, k = feature_map.shape
    cam = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            cam[i, j] = sum(feature_map[i, j, kk] * weights[kk, c] for kk in range(k))
    return (cam - cam.min()) / (cam.max() - cam.min())


def test_matches_the_formula_for_the_class_of_each_image() -> None:
    rng = np.random.default_rng(0)
    features = rng.random((3, 4, 5, 6)).astype(np.float32)
    weights = rng.normal(size=(6, 4)).astype(np.float32)
    classes = np.array([0, 3, 1])
    maps = class_activation_maps(features, weights, classes)
    assert maps.shape == (3, 4, 5) and maps.dtype == np.float32
    for n, c in enumerate(classes):
        np.testing.assert_allclose(maps[n], reference_cam(features[n], weights, c), atol=1e-5)


def test_nchw_feature_maps_give_the_same_maps() -> None:
    rng = np.random.default_rng(1)
    nhwc = rng.random((2, 3, 3, 4)).astype(np.float32)
    weights = rng.normal(size=(4, 2)).astype(np.float32)
    classes = np.array([1, 0])
    np.testing.assert_allclose(
        class_activation_maps(nhwc.transpose(0, 3, 1, 2), weights, classes, layout="NCHW"),
        class_activation_maps(nhwc, weights, classes),
    )


def test_maps_span_zero_to_one_and_peak_where_the_class_evidence_is() -> None:
    features = np.zeros((1, 4, 4, 2), np.float32)
    features[0, 2, 1, 0] = 5.0  # channel 0 votes for class 1
    weights = np.array([[0.0, 2.0], [1.0, 0.0]], np.float32)
    (cam,) = class_activation_maps(features, weights, np.array([1]))
    assert cam.min() == 0.0 and cam.max() == 1.0
    assert np.unravel_index(cam.argmax(), cam.shape) == (2, 1)


def test_a_flat_map_is_zeros_not_nan() -> None:
    features = np.ones((1, 2, 2, 3), np.float32)
    (cam,) = class_activation_maps(features, np.ones((3, 2), np.float32), np.array([0]))
    assert np.array_equal(cam, np.zeros((2, 2)))


def mapper(rows: int, layout: str = "NHWC") -> ActivationMapper:
    spec = ActivationMapSpec(
        feature_map="features", layout=layout, weights=np.ones((rows, 2)).tolist(), bias=[0, 0]
    )
    return ActivationMapper(spec)


def test_the_mapper_gives_the_maps_of_the_formula() -> None:
    features = np.random.default_rng(2).random((2, 3, 3, 4)).astype(np.float32)
    expected = class_activation_maps(features, np.ones((4, 2), np.float32), np.array([0, 1]))
    np.testing.assert_array_equal(mapper(4).maps(features, np.array([0, 1])), expected)


@pytest.mark.parametrize(
    ("features", "layout", "message"),
    [
        (np.ones((1, 3, 3, 5)), "NHWC", "has 5 channels (shape [1, 3, 3, 5], NHWC), the manifest"),
        (np.ones((1, 5, 3, 3)), "NCHW", "has 5 channels"),
        (np.ones((1, 3, 3)), "NHWC", "has rank 3 (shape [1, 3, 3])"),
    ],
    ids=["rows-nhwc", "rows-nchw", "rank"],
)
def test_a_feature_map_that_does_not_fit_the_weights_says_how(features, layout, message) -> None:
    with pytest.raises(ActivationMapError, match=re.escape(message)):
        mapper(4, layout).maps(features, np.array([0]))
