"""Render a single-frame DICOM image to 8-bit pixels as a viewer would.

Stored values -> modality LUT (rescale slope/intercept) -> VOI (window centre/width, or a VOI
LUT) -> 0..255, inverted for MONOCHROME1. No header value ever reaches a log line, an error
message or a response: DICOM headers carry patient names, IDs and dates.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import pydicom
from brainscan_manifest.decode import stretch_to_uint8
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from ..errors import BadUpload, ErrorCode
from .limits import DecodeLimits, check_dimensions

_PIXEL_DATA_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_GREY = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422")
_SUPPORTED_PHOTOMETRIC = ", ".join(_GREY + _COLOUR)
# Rows are rendered this many values at a time, so float temporaries stay a few MB.
_CHUNK_VALUES = 1 << 18


def decode_dicom(data: bytes, limits: DecodeLimits) -> Image.Image:
    """A DICOM Part 10 file -> 8-bit "L" or "RGB" picture, or a BadUpload saying why not."""
    dataset = _read(data)
    if not any(tag in dataset for tag in _PIXEL_DATA_TAGS):
        raise BadUpload(
            ErrorCode.DICOM_NO_PIXEL_DATA,
            "the DICOM file holds no pixel data (it may be a report or a presentation state): "
            "send a DICOM file that contains an image",
        )
    frames = _int_attribute(dataset, "NumberOfFrames", default=1)
    if frames > 1:
        raise BadUpload(
            ErrorCode.DICOM_MULTI_FRAME,
            f"the DICOM file holds {frames} frames; only single-frame DICOM images are "
            "supported: export the one slice to classify as its own file",
        )
    rows = _int_attribute(dataset, "Rows")
    columns = _int_attribute(dataset, "Columns")
    check_dimensions(columns, rows, limits)

    photometric = str(dataset.get("PhotometricInterpretation", "")).strip().upper()
    samples = _int_attribute(dataset, "SamplesPerPixel", default=1)
    if photometric not in _GREY + _COLOUR or samples not in (1, 3):
        raise BadUpload(
            ErrorCode.DICOM_UNSUPPORTED,
            f"DICOM photometric interpretation {photometric or '(none)'!r} with {samples} "
            f"samples per pixel is not supported: supported are {_SUPPORTED_PHOTOMETRIC}",
            status=415,
        )
    stored = _pixels(dataset)
    if samples == 3:
        # pydicom has already converted YBR to RGB.
        rgb = stored if stored.dtype == np.uint8 else stretch_to_uint8(stored)
        return Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    grey = render_grey(stored, dataset)
    if photometric == "MONOCHROME1":  # MONOCHROME1: the lowest value is displayed white
        np.subtract(255, grey, out=grey)
    return Image.fromarray(grey, mode="L")


def _read(data: bytes) -> Dataset:
    try:
        return pydicom.dcmread(io.BytesIO(data))
    except Exception as exc:  # pydicom raises many types for damaged files
        raise BadUpload(
            ErrorCode.CORRUPT_IMAGE,
            "the file has a DICOM marker but cannot be read: it is truncated or damaged",
        ) from exc


def _int_attribute(dataset: Dataset, keyword: str, default: int | None = None) -> int:
    try:
        value = dataset.get(keyword, default)
        if value is None or value == "":
            if default is None:
                raise ValueError(keyword)
            return default
        return int(value)
    except (TypeError, ValueError) as exc:
        raise BadUpload(
            ErrorCode.CORRUPT_IMAGE,
            f"the DICOM attribute {keyword} is missing or invalid: the file is damaged",
        ) from exc


def _pixels(dataset: Dataset) -> np.ndarray:
    try:
        return dataset.pixel_array
    except (NotImplementedError, RuntimeError) as exc:
        # No decoder for this transfer syntax (e.g. JPEG 2000 or JPEG-LS without plugins).
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        syntax_name = getattr(syntax, "name", None) or "this transfer syntax"
        raise BadUpload(
            ErrorCode.DICOM_UNSUPPORTED,
            f"the DICOM pixel data is encoded as {syntax_name}, which this service cannot "
            "decode: send uncompressed DICOM (little endian), PNG or JPEG",
            status=415,
        ) from exc
    except Exception as exc:  # short or inconsistent pixel data
        raise BadUpload(
            ErrorCode.CORRUPT_IMAGE,
            "the DICOM pixel data does not match its declared size and type: the file is "
            "truncated or damaged",
        ) from exc


def render_grey(stored: np.ndarray, dataset: Dataset) -> np.ndarray:
    """Stored values -> modality values -> VOI window -> uint8 (MONOCHROME2 sense).

    Modality values are kept in float32 (exact for 16-bit data) and everything else is
    computed a band of rows at a time, so a large slice never has full-size float64 copies.
    """
    values = np.empty(stored.shape, dtype=np.float32)
    for rows in _row_bands(stored):
        values[rows] = _modality_values(stored[rows], dataset)
    window = _first_window(dataset)
    if window is not None:
        centre, width = window
        function = str(dataset.get("VOILUTFunction", "LINEAR")).strip().upper()
        return _per_band(values, lambda band: apply_window(band, centre, width, function))
    if "VOILUTSequence" in dataset:
        try:
            voi = np.empty(values.shape, dtype=np.float32)
            for rows in _row_bands(values):
                voi[rows] = apply_voi_lut(values[rows], dataset, prefer_lut=True)
            return stretch_to_uint8(voi)
        except Exception:  # an unusable VOI LUT: fall back to the full range
            pass
    return stretch_to_uint8(values)


def _modality_values(stored: np.ndarray, dataset: Dataset) -> np.ndarray:
    try:
        return apply_modality_lut(stored, dataset)
    except Exception:  # a broken rescale or modality LUT: show the stored values
        return stored


def _row_bands(values: np.ndarray) -> list[slice]:
    """Slices of whole rows, each about _CHUNK_VALUES values."""
    rows = max(1, _CHUNK_VALUES // max(1, values[0].size if len(values) else 1))
    return [slice(top, top + rows) for top in range(0, len(values), rows)]


def _per_band(values: np.ndarray, render: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    out = np.empty(values.shape, dtype=np.uint8)
    for rows in _row_bands(values):
        out[rows] = render(values[rows])
    return out


def _first_window(dataset: Dataset) -> tuple[float, float] | None:
    """The first (default) window centre/width, or None when absent or unusable."""
    try:
        centre, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
        if centre is None or width is None:
            return None
        centre = float(centre[0] if _is_multi(centre) else centre)
        width = float(width[0] if _is_multi(width) else width)
    except (TypeError, ValueError, IndexError):
        return None
    if not (math.isfinite(centre) and math.isfinite(width)) or width <= 1:
        return None
    return centre, width


def _is_multi(value: object) -> bool:
    return isinstance(value, list | tuple | pydicom.multival.MultiValue)


def apply_window(values: np.ndarray, centre: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 windowing straight to 0..255."""
    values = np.asarray(values, dtype=np.float64)  # callers pass a band: small
    if function == "SIGMOID":
        scaled = 255.0 / (1.0 + np.exp(-4.0 * (values - centre) / width))
    elif function == "LINEAR_EXACT":
        scaled = ((values - centre) / width + 0.5) * 255.0
    else:  # LINEAR (the default)
        scaled = ((values - (centre - 0.5)) / (width - 1.0) + 0.5) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
