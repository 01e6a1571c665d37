"""Random shapes and textures for lesions: lobulated blobs, smooth noise, patches of the canvas."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi


@dataclass(frozen=True)
class Box:
    """A rectangular patch of the canvas: rows r0:r1, columns c0:c1."""

    r0: int
    r1: int
    c0: int
    c1: int

    @classmethod
    def around(cls, center: tuple[float, float], half: float, shape: tuple[int, int]) -> Box:
        """The box of half-size `half` around `center`, clipped to an array of `shape`."""
        r, c = center
        h = int(np.ceil(half))
        return cls(
            max(int(r) - h, 0),
            min(int(r) + h + 1, shape[0]),
            max(int(c) - h, 0),
            min(int(c) + h + 1, shape[1]),
        )

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.r0, self.r1), slice(self.c0, self.c1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.r1 - self.r0, self.c1 - self.c0

    def local(self, point: tuple[float, float]) -> tuple[float, float]:
        """A canvas point in this box's coordinates."""
        return point[0] - self.r0, point[1] - self.c0


def fade_within(box: Box, center: tuple[float, float], half: float) -> np.ndarray:
    """1 near `center`, falling to 0 over the outer quarter of a `half`-sized box around it, so
    something painted in the box never ends in the box's straight edge."""
    rows = np.arange(box.r0, box.r1, dtype=np.float32)[:, None] - center[0]
    cols = np.arange(box.c0, box.c1, dtype=np.float32)[None, :] - center[1]
    return np.clip((half - np.hypot(rows, cols)) / (0.25 * half), 0.0, 1.0)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Gaussian random field with unit standard deviation and correlation length `scale` pixels."""
    field = ndi.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), scale, mode="wrap")
    return field / (field.std() + 1e-6)


def coarse_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise varying over about shape/cells pixels, roughly unit variance.

    A sum of three products of smooth 1-D random curves: 30x cheaper than upsampling a 2-D grid
    with splines, and smooth variation is all that is needed.
    """
    field = np.zeros(shape, dtype=np.float32)
    for _ in range(3):
        rows = np.interp(np.linspace(0, cells, shape[0]), np.arange(cells + 1),
                         rng.standard_normal(cells + 1))  # fmt: skip
        cols = np.interp(np.linspace(0, cells, shape[1]), np.arange(cells + 1),
                         rng.standard_normal(cells + 1))  # fmt: skip
        field += np.outer(rows, cols).astype(np.float32)
    return field / np.sqrt(3.0)


def blob_level(
    rng: np.random.Generator,
    shape: tuple[int, int],
    center: tuple[float, float],
    radius: float,
    *,
    lobulation: float,
    roughness: float,
    elongation: float = 1.0,
    angle: float = 0.0,
    noise_scale: float = 3.0,
) -> np.ndarray:
    """A level field that is < 1 inside a lobulated, rough-edged blob (0 at its centre).

    lobulation bends the outline with low harmonics; roughness adds smooth noise to the level,
    so the edge frays by about roughness * radius.
    """
    rows = np.arange(shape[0], dtype=np.float32)[:, None] - center[0]
    cols = np.arange(shape[1], dtype=np.float32)[None, :] - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * cols + sin * rows) / elongation
    v = -sin * cols + cos * rows
    rho = np.hypot(u, v)
    # cos(k theta) and sin(k theta) by the angle-addition recurrence: no arctan2 or cos per pixel.
    safe = np.maximum(rho, 1e-6)
    c1, s1 = u / safe, v / safe
    ck, sk = c1, s1
    outline = np.ones_like(rho)
    for k in range(2, 6):
        ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1
        amplitude = lobulation * rng.uniform(0.3, 1.0) / (k - 1)
        phase = rng.uniform(0, 2 * np.pi)
        outline += amplitude * (np.cos(phase) * ck - np.sin(phase) * sk)
    level = rho / (radius * np.maximum(outline, 0.3))
    if roughness > 0:
        level += roughness * smooth_noise(rng, shape, noise_scale)
    return level


def soft_inside(level: np.ndarray, edge: float) -> np.ndarray:
    """Opacity 1 well inside a level-1 outline, 0 outside, with a ramp `edge` level units wide."""
    return np.clip((1.0 - level) / edge + 0.5, 0.0, 1.0).astype(np.float32)


def local_mean(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Weighted Gaussian mean of `values` (e.g. over brain tissue only), never dividing by zero."""
    numerator = ndi.gaussian_filter(values * weights, sigma)
    denominator = ndi.gaussian_filter(weights.astype(np.float32), sigma)
    return numerator / np.maximum(denominator, 1e-3)
