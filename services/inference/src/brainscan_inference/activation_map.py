"""Class activation maps (CAM, Zhou et al. 2016) from the last feature map and classifier weights.

For a network that ends in global average pooling and one dense layer, the map for class c is
``sum_k feature_map[..., k] * weights[k][c]``: where the features that vote for c are strong.
"""

from __future__ import annotations

from typing import Literal

import numpy as np


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
