"""Turn a decoded image into the model's input tensor exactly as its manifest says.

Training, evaluation and the gateway all call this one function, so the pixels a model sees
in production are computed by the same code as the pixels it was trained and tested on.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .schema import InputSpec

_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def resize_for_model(image: Image.Image, spec: InputSpec) -> Image.Image:
    """Convert to the model's colour mode and resize (no crop) with the manifest's filter."""
    if image.mode == "L" and spec.color == "RGB":
        # Grey to RGB copies one channel three times, and Pillow resizes each channel alike, so
        # resizing first gives the same pixels for a third of the work (DICOM is always grey).
        return _resized(image, spec).convert("RGB")
    if image.mode != spec.color:
        image = image.convert(spec.color)
    return _resized(image, spec)


def _resized(image: Image.Image, spec: InputSpec) -> Image.Image:
    if image.size != (spec.width, spec.height):
        image = image.resize((spec.width, spec.height), _FILTERS[spec.resize_filter])
    return image


def to_input_array(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """One image -> one sample (no batch axis) in the manifest's layout, dtype and scaling."""
    pixels = np.asarray(resize_for_model(image, spec))
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if spec.layout == "NCHW":
        pixels = pixels.transpose(2, 0, 1)
    if spec.dtype == "uint8":
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    return (pixels.astype(np.float32) * spec.scale + spec.offset).astype(np.float32)


def input_intensity(batch: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Mean pixel value (0..1) of each sample of a model-input batch: a drift statistic.

    Computed on the model's input, not the upload, so the reference made at training time and
    the value measured in serving see the same pixels whatever the upload's size or format.
    """
    axes = tuple(range(1, batch.ndim))
    means = batch.mean(axis=axes, dtype=np.float64)
    if spec.dtype == "float32":
        means = (means - spec.offset) / spec.scale
    return means / 255.0
