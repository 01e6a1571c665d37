"""Normalise a decoded raster image to the upright 8-bit picture a model is fed.

Training, evaluation and the gateway all pass every opened image through ``upright_eight_bit``
before ``preprocess.to_input_array``: EXIF orientation, 16-bit and float stretching, alpha and
palette handling are then computed by one implementation, not re-coded on each side.
Memory stays bounded: no full-size float64 copy of a large image is ever made.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose).
_ORIENTATION_TAG = 0x0112
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
# Elements processed at once when a stretch cannot use a lookup table (2 MB of float64).
_CHUNK_ELEMENTS = 1 << 18


def upright_eight_bit(image: Image.Image) -> Image.Image:
    """Any opened JPEG/PNG (or a rendered DICOM) -> upright "L" (grey) or "RGB", 8 bits."""
    transpose = _UPRIGHT.get(exif_orientation(image))
    image = to_eight_bit(image)  # first: transposing 8-bit pixels is cheaper than 16-bit ones
    return image.transpose(transpose) if transpose is not None else image


def exif_orientation(image: Image.Image) -> int:
    """The EXIF (or XMP) orientation, 1 (as stored) when absent or unreadable."""
    try:
        return int(image.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # a malformed EXIF block must not make a readable image unreadable
        return 1


def to_eight_bit(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> "L" (grey) or "RGB", 8 bits per channel."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in _HIGH_DEPTH_MODES:
        return _stretch_image(image)
    if mode == "P":
        if "transparency" in image.info:
            return _over_black(image.convert("RGBA"))
        return image.convert("RGB")
    if mode in _ALPHA_MODES:
        return _over_black(image.convert("LA" if mode in ("LA", "La") else "RGBA"))
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _over_black(image: Image.Image) -> Image.Image:
    """Composite over black: transparent areas become background, as in an MRI slice."""
    if image.mode == "LA":
        grey, alpha = image.split()
        return Image.composite(grey, Image.new("L", image.size, 0), alpha)
    black = Image.new("RGBA", image.size, (0, 0, 0, 255))
    return Image.alpha_composite(black, image).convert("RGB")


def stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map an array's own min..max to 0..255 (MRI intensities have no absolute unit).

    Non-finite values count as the minimum. Extra memory is the uint8 result plus a few MB.
    """
    values = np.asarray(values)
    flat = values.reshape(-1)
    starts = range(0, flat.size, _CHUNK_ELEMENTS)
    out = np.zeros(flat.size, dtype=np.uint8)
    stretch = _Stretch.over((flat[s : s + _CHUNK_ELEMENTS] for s in starts), values.dtype)
    if stretch is not None:
        for start in starts:
            out[start : start + _CHUNK_ELEMENTS] = stretch(flat[start : start + _CHUNK_ELEMENTS])
    return out.reshape(values.shape)


def _stretch_image(image: Image.Image) -> Image.Image:
    """A 16/32-bit or float Pillow image -> "L", read in bands of rows.

    Reading bands keeps the extra memory to the 8-bit result: ``np.asarray`` of the whole
    image would copy it (twice, through ``tobytes``) at 2-4 bytes per pixel.
    """
    width, height = image.size
    rows = max(1, _CHUNK_ELEMENTS // max(1, width))
    tops = range(0, height, rows)

    def band(top: int) -> np.ndarray:
        return np.asarray(image.crop((0, top, width, min(height, top + rows))))

    out = np.zeros((height, width), dtype=np.uint8)
    stretch = _Stretch.over((band(top) for top in tops), band(0).dtype if height else np.uint8)
    if stretch is not None:
        for top in tops:
            values = band(top)
            out[top : top + len(values)] = stretch(values)
    return Image.fromarray(out, mode="L")


class _Stretch:
    """Linear low..high -> 0..255 with rounding, by lookup table for 8/16-bit unsigned data."""

    def __init__(self, low: float, high: float, dtype: np.dtype) -> None:
        self.low, self.gain = low, 255.0 / (high - low)
        self.table = None
        if dtype.kind in "ub" and dtype.itemsize <= 2:
            levels = np.arange(np.iinfo(np.uint16 if dtype.itemsize == 2 else np.uint8).max + 1)
            self.table = self._scaled(levels.astype(np.float64))

    @classmethod
    def over(cls, chunks, dtype: np.dtype) -> _Stretch | None:
        """From the finite range of all chunks; None when it is empty or flat."""
        low, high = np.inf, -np.inf
        for chunk in chunks:
            finite = chunk[np.isfinite(chunk)] if chunk.dtype.kind == "f" else chunk
            if finite.size:
                low, high = min(low, float(finite.min())), max(high, float(finite.max()))
        return cls(low, high, np.dtype(dtype)) if high > low else None

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return self.table[chunk.view(np.uint8) if chunk.dtype.kind == "b" else chunk]
        values = chunk.astype(np.float64)  # one chunk: exact for int32/float32, a few MB
        values[~np.isfinite(values)] = self.low
        return self._scaled(values)

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        values -= self.low
        values *= self.gain
        np.rint(values, out=values)
        np.clip(values, 0, 255, out=values)
        return values.astype(np.uint8)
