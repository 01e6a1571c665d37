"""The pixel limits an upload must satisfy, checked on its header before any pixel is decoded.

Shared by the raster decoder and the DICOM renderer; neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadUpload, ErrorCode


@dataclass(frozen=True)
class DecodeLimits:
    """What an upload must satisfy before it is decoded."""

    max_pixels: int
    min_side: int


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
