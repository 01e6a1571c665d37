"""Render one frame of a DICOM image to 8-bit pixels as a viewer would.

Stored values -> modality LUT (rescale slope/intercept) -> VOI (window centre/width, or a VOI
LUT) -> 0..255, inverted for MONOCHROME1. A multi-frame file (enhanced MR, say) is rendered on
one frame: the one asked for, else the middle one (``choose_frame``), with that frame's own
rescale and window from the functional groups. No header value ever reaches a log line, an
error message or a response: DICOM headers carry patient names, IDs and dates.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pydicom
from brainscan_manifest.decode import stretch_to_uint8
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from ..errors import BadUpload, ErrorCode
from . import transfer_syntax
from .frames import FrameChoice, choose_frame
from .limits import DecodeLimits, check_dimensions

_PIXEL_DATA_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_GREY = ("MONOCHROME1", "MONOCHROME2")
# YBR_RCT/YBR_ICT are JPEG 2000's colour transforms: the decoder undoes them, giving RGB.
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT")
_SUPPORTED_PHOTOMETRIC = ", ".join(_GREY + _COLOUR)
# Rows are rendered this many values at a time, so float temporaries stay a few MB.
_CHUNK_VALUES = 1 << 18
# What rendering reads; a frame's own values replace these (``frame_attributes``).
_RENDER_KEYWORDS = (
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "VOILUTSequence",
)
# Functional group macros (PS3.3 C.7.6.16) holding a frame's rescale and window, and what of
# each item rendering uses.
_FRAME_MACROS = {
    "PixelValueTransformationSequence": ("RescaleSlope", "RescaleIntercept", "RescaleType"),
    "FrameVOILUTSequence": ("WindowCenter", "WindowWidth", "VOILUTFunction"),
}

transfer_syntax.install()


@dataclass(frozen=True)
class RenderedDicom:
    image: Image.Image
    """8-bit "L" or "RGB"."""
    frame: FrameChoice | None
    """Which frame, for a multi-frame file; None for a single-frame one."""


def decode_dicom(data: bytes, limits: DecodeLimits, frame: int | None = None) -> RenderedDicom:
    """A DICOM Part 10 file -> one frame as an 8-bit picture, or a BadUpload saying why not.

    ``frame`` is 1-based; None picks the middle frame (``choose_frame``).
    """
    dataset = _read(data)
    if not any(tag in dataset for tag in _PIXEL_DATA_TAGS):
        raise BadUpload(
            ErrorCode.DICOM_NO_PIXEL_DATA,
            "the DICOM file holds no pixel data (it may be a report or a presentation state): "
            "send a DICOM file that contains an image",
        )
    count = _int_attribute(dataset, "NumberOfFrames", default=1)
    if count < 1:
        raise BadUpload(
            ErrorCode.CORRUPT_IMAGE,
            "the DICOM attribute NumberOfFrames is missing or invalid: the file is damaged",
        )
    index = choose_frame(count, frame)
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
    transfer_syntax.check_decodable(dataset)
    # Only the chosen frame is decoded: a compressed series costs one frame of memory.
    stored = _pixels(dataset, index - 1 if count > 1 else None)
    choice = FrameChoice(index, count) if count > 1 else None
    if samples == 3:
        # pydicom has already converted YBR to RGB.
        rgb = stored if stored.dtype == np.uint8 else stretch_to_uint8(stored)
        return RenderedDicom(Image.fromarray(np.ascontiguousarray(rgb), mode="RGB"), choice)
    grey = render_grey(stored, frame_attributes(dataset, index))
    if photometric == "MONOCHROME1":  # MONOCHROME1: the lowest value is displayed white
        np.subtract(255, grey, out=grey)
    return RenderedDicom(Image.fromarray(grey, mode="L"), choice)


def frame_attributes(dataset: Dataset, index: int) -> Dataset:
    """What renders frame ``index`` (1-based): the top-level attributes, replaced by those of
    the shared functional groups, replaced by the frame's own (enhanced MR keeps its rescale
    and window there, PS3.3 C.7.6.16; a legacy multi-frame keeps them at the top level)."""
    view = Dataset()
    for keyword in _RENDER_KEYWORDS:
        if keyword in dataset:
            view[keyword] = dataset[keyword]
    groups = [
        _item(dataset.get("SharedFunctionalGroupsSequence"), 0),
        _item(dataset.get("PerFrameFunctionalGroupsSequence"), index - 1),
    ]
    for group in groups:
        if group is None:
            continue
        for macro, keywords in _FRAME_MACROS.items():
            item = _item(group.get(macro), 0)
            if item is None:
                continue
            for keyword in keywords:
                if keyword in item:
                    view[keyword] = item[keyword]
    return view


def _item(sequence: object, position: int) -> Dataset | None:
    try:
        item = sequence[position]  # type: ignore[index]
    except (TypeError, IndexError):
        return None
    return item if isinstance(item, Dataset) else None


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


def _pixels(dataset: Dataset, frame_index: int | None) -> np.ndarray:
    """The stored values of one frame (0-based ``frame_index``; None: the only frame)."""
    if frame_index is not None:
        dataset.pixel_array_options(index=frame_index)
    try:
        return dataset.pixel_array
    except NotImplementedError as exc:
        # check_decodable found a decoder, but none of its plugins takes this variant (a
        # bit depth or colour model they do not support).
        syntax = dataset.file_meta.TransferSyntaxUID
        raise BadUpload(
            ErrorCode.DICOM_UNSUPPORTED, transfer_syntax.unsupported_message(syntax), status=415
        ) from exc
    except Exception as exc:  # short, inconsistent or damaged pixel data
        syntax = dataset.file_meta.TransferSyntaxUID
        if not syntax.is_compressed:
            raise BadUpload(
                ErrorCode.CORRUPT_IMAGE,
                "the DICOM pixel data does not match its declared size and type: the file is "
                "truncated or damaged",
            ) from exc
        # Every plugin failed: pydicom cannot tell damage from a variant none of them takes.
        raise BadUpload(
            ErrorCode.CORRUPT_IMAGE,
            f"the DICOM pixel data, encoded as {transfer_syntax.describe(syntax)}, cannot be "
            "decoded: the compressed data is truncated or damaged, or uses a bit depth or "
            "colour model the decoders here do not take: send it uncompressed (Explicit VR "
            "Little Endian, 1.2.840.10008.1.2.1)",
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
