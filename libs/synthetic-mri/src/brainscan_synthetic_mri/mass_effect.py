"""Mass effect: a growing lesion pushes the surrounding tissue outward."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from brainscan_synthetic_mri.shapes import Box


def push_away(
    arrays: list[np.ndarray],
    center: tuple[float, float],
    displaced_radius: float,
    reach: float,
) -> list[np.ndarray]:
    """Warp `arrays` as if a disc of `displaced_radius` grew at `center`, shoving tissue outward.

    A point at distance rho samples the source at sqrt(rho^2 - a^2 w(rho)), where w decays over
    `reach` beyond the disc: area is conserved near the lesion (tissue is compressed, not deleted),
    and the mapping is monotone, so no tissue folds over itself.
    """
    if displaced_radius <= 0.5:
        return [a.copy() for a in arrays]
    shape = arrays[0].shape
    box = Box.around(center, displaced_radius + 2.5 * reach, shape)
    rows = np.arange(box.r0, box.r1, dtype=np.float32)[:, None] - center[0]
    cols = np.arange(box.c0, box.c1, dtype=np.float32)[None, :] - center[1]
    rho = np.hypot(rows, cols)
    beyond = np.maximum(rho - displaced_radius, 0.0) / reach
    source_sq = rho**2 - displaced_radius**2 * np.exp(-(beyond**2))
    factor = np.sqrt(np.maximum(source_sq, 0.0)) / np.maximum(rho, 1e-3)
    coords = np.stack(
        [
            np.broadcast_to(center[0] + rows * factor, box.shape),
            np.broadcast_to(center[1] + cols * factor, box.shape),
        ]
    )
    warped = []
    for array in arrays:
        out = array.copy()
        source = array.astype(np.float32, copy=False)
        out[box.slices] = ndi.map_coordinates(source, coords, order=1, mode="nearest").astype(
            array.dtype
        )
        warped.append(out)
    return warped
