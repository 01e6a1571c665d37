"""Draw a class activation map over the image: upsampled, colour-mapped, blended, as PNG.

The map covers the whole model input, which is the whole image resized without cropping, so
stretching it back over the image's own aspect ratio puts each cell where it came from.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

# Control points of a perceptually ordered blue-cyan-green-yellow-red map ("turbo"-like).
_STOPS = np.array([0.0, 0.15, 0.35, 0.5, 0.65, 0.85, 1.0])
_COLOURS = np.array(
    [
        [48, 18, 59],
        [70, 107, 227],
        [27, 207, 212],
        [97, 252, 108],
        [210, 233, 53],
        [254, 155, 45],
        [122, 4, 3],
    ],
    dtype=np.float64,
)
_LUT = np.stack(
    [np.interp(np.linspace(0, 1, 256), _STOPS, _COLOURS[:, c]) for c in range(3)], axis=1
).astype(np.uint8)


def display_copy(image: Image.Image, max_side: int) -> Image.Image:
    """An RGB copy no larger than ``max_side`` on its longest side (for previews)."""
    copy = image.convert("RGB")
    copy.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return copy


def colour_map(cam: np.ndarray) -> np.ndarray:
    """[h, w] values in 0..1 -> [h, w, 3] uint8 colours."""
    indices = np.clip(np.rint(np.nan_to_num(cam) * 255), 0, 255).astype(np.uint8)
    return _LUT[indices]


def overlay(
    image: Image.Image, cam: np.ndarray, max_side: int, strength: float = 0.55
) -> Image.Image:
    """The image (at most ``max_side``) with the map blended in where it is strong."""
    base = display_copy(image, max_side)
    heat = Image.fromarray(np.asarray(cam, dtype=np.float32), mode="F").resize(
        base.size, Image.Resampling.BILINEAR
    )
    values = np.clip(np.asarray(heat), 0.0, 1.0)
    colours = colour_map(values).astype(np.float32)
    # Weak evidence stays nearly transparent, so the anatomy remains readable under the map.
    alpha = (strength * np.sqrt(values))[..., None]
    blended = np.asarray(base, dtype=np.float32) * (1 - alpha) + colours * alpha
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8), mode="RGB")


def png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
