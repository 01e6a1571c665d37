"""Decode an upload (JPEG, PNG or DICOM) into one 8-bit greyscale or RGB picture.

Size limits are checked on the header, before any pixel is decoded, so a small file that
expands to billions of pixels (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BadUpload, ErrorCode
from .upload_format import UploadFormat, detect_format

# Enough bytes to see a DICOM preamble (128) and its "DICM" marker, and to describe other formats.
SNIFF_BYTES = 512


@dataclass(frozen=True)
class DecodeLimits:
    """What an upload must satisfy before it is decoded."""

    max_pixels: int
    min_side: int


@dataclass(frozen=True)
class DecodedImage:
    """The picture to classify (mode "L" or "RGB", 8 bits per channel) and where it came from."""

    image: Image.Image
    source_format: UploadFormat

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def decode_upload(data: bytes, limits: DecodeLimits) -> DecodedImage:
    """Detect the format by content, check the limits on the header, then decode."""
    upload_format = detect_format(data[:SNIFF_BYTES])
    if upload_format is UploadFormat.DICOM:
        from .dicom_decoding import decode_dicom  # pydicom is only imported when a DICOM comes

        image = decode_dicom(data, limits)
    else:
        image = decode_raster(data, upload_format, limits)
    return DecodedImage(image=image, source_format=upload_format)


def check_dimensions(width: int, height: int, limits: DecodeLimits, frames: int = 1) -> None:
    """Refuse images too large to decode safely or too small to classify."""
    pixels = width * height * frames
    if pixels > limits.max_pixels:
        raise BadUpload(
            ErrorCode.TOO_MANY_PIXELS,
            f"the image is {width}x{height} pixels ({pixels:,} in all), above the limit of "
            f"{limits.max_pixels:,} pixels: send a smaller image",
        )
    if min(width, height) < limits.min_side:
        raise BadUpload(
            ErrorCode.IMAGE_TOO_SMALL,
            f"the image is {width}x{height} pixels, too small to classify: each side must be "
            f"at least {limits.min_side} pixels",
        )


def decode_raster(data: bytes, upload_format: UploadFormat, limits: DecodeLimits) -> Image.Image:
    """JPEG or PNG -> upright 8-bit "L" or "RGB" picture."""
    name = upload_format.name
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies; Pillow's warning about its larger one is noise here.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[name])
    except Image.DecompressionBombError as exc:
        raise BadUpload(
            ErrorCode.TOO_MANY_PIXELS,
            f"the {name} header declares more pixels than the limit of {limits.max_pixels:,}: "
            "send a smaller image",
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _corrupt(name) from exc

    width, height = image.size
    check_dimensions(width, height, limits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image.load()
    except Exception as exc:  # Pillow and zlib raise many types for damaged or truncated data
        raise _corrupt(name) from exc
    return to_eight_bit(_upright(image))


def _corrupt(name: str) -> BadUpload:
    return BadUpload(
        ErrorCode.CORRUPT_IMAGE,
        f"the file starts like a {name} image but cannot be decoded: it is truncated or damaged",
    )


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag, as a camera or phone photo of a film expects."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # a malformed EXIF block must not make a readable image unreadable
        return image


def to_eight_bit(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> "L" (grey) or "RGB", 8 bits per channel."""
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return Image.fromarray(stretch_to_uint8(np.asarray(image)), mode="L")
    if mode == "P":
        if "transparency" in image.info:
            return _flatten(image.convert("RGBA"))
        return image.convert("RGB")
    if mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        return _flatten(image.convert("LA" if mode in ("LA", "La") else "RGBA"))
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _flatten(image: Image.Image) -> Image.Image:
    """Composite over black: transparent areas become background, as in an MRI slice."""
    if image.mode == "LA":
        grey, alpha = image.split()
        black = Image.new("L", image.size, 0)
        return Image.composite(grey, black, alpha)
    black = Image.new("RGBA", image.size, (0, 0, 0, 255))
    return Image.alpha_composite(black, image).convert("RGB")


def stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map the image's own min..max to 0..255 (MRI intensities have no absolute unit)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    low, high = float(values[finite].min()), float(values[finite].max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.where(finite, values, low) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
