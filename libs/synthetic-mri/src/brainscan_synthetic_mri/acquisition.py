"""The scanner's side: field of view, orientation, bias field, gamma and Rician noise."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage as ndi


def output_shape(rng: np.random.Generator, image_size: int, augment: bool) -> tuple[int, int]:
    """Square `image_size` images, with some narrower ones (Kaggle's sizes vary)."""
    if not augment or rng.random() < 0.7:
        return image_size, image_size
    short = round(image_size * rng.uniform(0.88, 1.0))
    return (image_size, short) if rng.random() < 0.5 else (short, image_size)


def view_matrix(
    rng: np.random.Generator,
    head_center: tuple[float, float],
    head_span: float,
    canvas_size: int,
    shape: tuple[int, int],
    augment: bool,
    fill: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, offset) mapping output pixels to canvas pixels for ndimage.affine_transform.

    With augmentation the head fills 80-98% of the frame (or `fill`, a field of view training
    never uses), rotated up to 12 degrees, shifted a little and mirrored half the time; without,
    the whole canvas is only rescaled to the output.
    """
    out_center = (np.asarray(shape, dtype=float) - 1) / 2
    if not augment:
        matrix = np.eye(2) * (canvas_size / max(shape))
        return matrix, np.full(2, (canvas_size - 1) / 2) - matrix @ out_center
    fill = rng.uniform(0.8, 0.98) if fill is None else fill
    mm_per_pixel = head_span / fill / min(shape)
    angle = np.deg2rad(rng.uniform(-12, 12))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    mirror = np.diag([1.0, -1.0 if rng.random() < 0.5 else 1.0])
    matrix = rotation @ mirror * mm_per_pixel
    shift = rng.uniform(-0.03, 0.03, size=2) * head_span
    return matrix, np.asarray(head_center) + shift - matrix @ out_center


def resample(
    canvas: np.ndarray, matrix: np.ndarray, offset: np.ndarray, shape: tuple[int, int], order: int
) -> np.ndarray:
    """The canvas seen through the view (outside it is air: 0); order 1 bilinear, 0 nearest.

    Same mapping as ndimage.affine_transform(canvas, matrix, offset) (canvas index = matrix @
    output index + offset), done by PIL: 3x faster. PIL works in (x, y) = (column, row) and
    samples at pixel centres, hence the swapped axes and the half-pixel terms.
    """
    (rr, rc), (cr, cc) = matrix
    x0 = offset[1] + 0.5 - 0.5 * (cc + cr)
    y0 = offset[0] + 0.5 - 0.5 * (rc + rr)
    source = Image.fromarray(canvas.astype(np.float32 if order else np.uint8, copy=False))
    view = source.transform(
        (shape[1], shape[0]),
        Image.Transform.AFFINE,
        (cc, cr, x0, rc, rr, y0),
        resample=Image.Resampling.BILINEAR if order else Image.Resampling.NEAREST,
    )
    return np.asarray(view).astype(canvas.dtype, copy=False)


def scanner_effects(image: np.ndarray, rng: np.random.Generator, augment: bool) -> np.ndarray:
    """Bias field, blur, Rician noise and gamma on a [0, 1] image; returns uint8."""
    # The gain comes from a subsample: a percentile of every pixel costs more than the rest here.
    bright = max(float(np.percentile(image[::3, ::3], 99.5)), 1e-3)
    if not augment:
        return np.clip(image * (0.95 / bright) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rows = np.linspace(-1, 1, image.shape[0], dtype=np.float32)[:, None]
    cols = np.linspace(-1, 1, image.shape[1], dtype=np.float32)[None, :]
    a = rng.normal(0, [0.15, 0.15, 0.1, 0.1, 0.08]).astype(np.float32)
    bias = np.exp(a[0] * rows + a[1] * cols + a[2] * rows**2 + a[3] * cols**2 + a[4] * rows * cols)
    image = image * bias
    if rng.random() < 0.3:  # thicker slices / lower resolution scans look softer
        image = ndi.gaussian_filter(image, rng.uniform(0.4, 1.0))
    sigma = rng.uniform(0.008, 0.04)
    # Magnitude images of complex Gaussian noise: Rician, so air is grainy but never negative.
    real = image + sigma * rng.standard_normal(image.shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(image.shape, dtype=np.float32)
    image = np.hypot(real, imag)
    gain = rng.uniform(0.85, 1.05) / bright
    pixels = np.clip(image * (gain * 255.0) + 0.5, 0, 255).astype(np.uint8)
    # Gamma as a lookup table on the 256 grey levels: a power's result at a fraction of its cost.
    levels = np.linspace(0, 1, 256) ** rng.uniform(0.75, 1.35)
    return (levels * 255 + 0.5).astype(np.uint8)[pixels]
