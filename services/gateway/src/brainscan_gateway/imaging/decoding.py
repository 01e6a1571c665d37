"""Decode an upload (JPEG, PNG or DICOM) into one 8-bit greyscale or RGB picture.

Size limits (``limits``) are checked on the header, before any pixel is decoded, so a small file
that expands to billions of pixels (a decompression bomb) costs nothing. Orientation, bit depth,
palette and alpha are normalised by ``brainscan_manifest.decode``, as in training. This module
dispatches by format: it is the only one that knows both the raster decoder (here) and the
DICOM renderer (``dicom``), which needs only ``limits``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from brainscan_manifest.decode import upright_eight_bit
from PIL import Image, UnidentifiedImageError

from ..errors import BadUpload, ErrorCode
from .frames import FrameChoice
from .limits import DecodeLimits, check_dimensions
from .upload_format import UploadFormat, detect_format

# Enough bytes to see a DICOM preamble (128) and its "DICM" marker, and to describe other formats.
SNIFF_BYTES = 512


@dataclass(frozen=True)
class DecodedImage:
    """The picture to classify (mode "L" or "RGB", 8 bits per channel) and where it came from."""

    image: Image.Image
    source_format: UploadFormat
    frame: FrameChoice | None = None
    """The frame classified, for a multi-frame DICOM; None for any single image."""

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def decode_upload(data: bytes, limits: DecodeLimits, frame: int | None = None) -> DecodedImage:
    """Detect the format by content, check the limits on the header, then decode.

    ``frame`` (1-based) picks the frame of a multi-frame DICOM; None: the middle one. A JPEG,
    PNG or single-frame DICOM has one frame, so only 1 is in range for it.
    """
    upload_format = detect_format(data[:SNIFF_BYTES])
    if upload_format is UploadFormat.DICOM:
        from .dicom import decode_dicom  # pydicom is only imported when a DICOM comes

        rendered = decode_dicom(data, limits, frame)
        # Rendered to grey or RGB here; the shared normalisation below then sees a plain image.
        image = upright_eight_bit(rendered.image)
        return DecodedImage(image=image, source_format=upload_format, frame=rendered.frame)
    if frame is not None and frame != 1:
        raise BadUpload(
            ErrorCode.FRAME_OUT_OF_RANGE,
            f"frame {frame} was asked for, but a {upload_format.name} image has one frame: "
            "ask for frame 1, or leave frame out",
        )
    image = decode_raster(data, upload_format, limits)
    return DecodedImage(image=image, source_format=upload_format)


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
    # The normalisation training applies to its files too (brainscan_manifest.decode).
    return upright_eight_bit(image)


def _corrupt(name: str) -> BadUpload:
    return BadUpload(
        ErrorCode.CORRUPT_IMAGE,
        f"the file starts like a {name} image but cannot be decoded: it is truncated or damaged",
    )
