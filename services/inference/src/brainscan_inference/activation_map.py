"""Class activation maps (CAM, Zhou et al. 2016) from the last feature map and classifier weights.

For a network that ends in global average pooling and one dense layer, the map for class c is
``sum_k feature_map[..., k] * weights[k][c]``: where the features that vote for c are strong.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from brainscan_manifest import ActivationMapSpec


class ActivationMapError(ValueError):
    """The feature map and the classifier weights do not fit together; the message says how."""


class ActivationMapper:
    """The maps of one model: its feature-map output, layout and classifier weights [K, C]."""

    def __init__(self, spec: ActivationMapSpec) -> None:
        self.feature_map = spec.feature_map
        self.layout = spec.layout
        self.weights = np.asarray(spec.weights, dtype=np.float32)

    def maps(self, feature_map: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Maps [N, h, w] for ``classes[i]`` of image i; ActivationMapError if they cannot be."""
        shape = list(feature_map.shape)
        if feature_map.ndim != 4:
            raise ActivationMapError(
                f"feature map {self.feature_map!r} has rank {feature_map.ndim} (shape {shape}), "
                f"an activation map needs rank 4 ({self.layout})"
            )
        channels = shape[3] if self.layout == "NHWC" else shape[1]
        if channels != self.weights.shape[0]:
            raise ActivationMapError(
                f"feature map {self.feature_map!r} has {channels} channels (shape {shape}, "
                f"{self.layout}), the manifest's activation_map.weights has "
                f"{self.weights.shape[0]} rows"
            )
        return class_activation_maps(feature_map, self.weights, classes, self.layout)


def class_activation_maps(
    feature_map: np.ndarray,
    weights: np.ndarray,
    classes: np.ndarray,
    layout: Literal["NHWC", "NCHW"] = "NHWC",
) -> np.ndarray:
    """Maps of shape [N, h, w] scaled to 0..1 per image, for ``classes[i]`` of image i.

    ``weights`` is [K, C] (feature channel k, class c). A flat map (no evidence anywhere) is
    all zeros rather than a division by zero.
    """
    if layout == "NCHW":
        feature_map = feature_map.transpose(0, 2, 3, 1)
    # Per image: [h, w, K] @ [K] -> [h, w], with the column of that image's class.
    class_weights = weights[:, classes].T  # [N, K]
    maps = np.einsum("nhwk,nk->nhw", feature_map, class_weights, optimize=True)
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    scaled = np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 1e-12)
    return scaled.astype(np.float32, copy=False)
