"""Compressed and multi-frame DICOM files built in the test, from the uncompressed original.

Nothing is downloaded: pydicom's own encoders (RLE, JPEG-LS via pyjpegls, JPEG 2000 via
pylibjpeg-openjpeg) where it has them, GDCM's for the JPEG processes pydicom cannot write
(12-bit extended, lossless), Pillow for 8-bit baseline JPEG.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import gdcm
import numpy as np
import pydicom
from brainscan_testsupport.dicoms import mr_dataset, mr_slice, to_bytes
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    EnhancedMRImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

_GDCM_SYNTAXES = {
    JPEGExtended12Bit: gdcm.TransferSyntax.JPEGExtendedProcess2_4,
    JPEGLossless: gdcm.TransferSyntax.JPEGLosslessProcess14,
    JPEGLosslessSV1: gdcm.TransferSyntax.JPEGLosslessProcess14_1,
}
# How far a lossy syntax may move a 12-bit stored value, as set when encoding below.
JLS_NEAR_LOSSLESS_ERROR = 3


def original(size: int = 96) -> Dataset:
    """The uncompressed 12-bit MR slice every compressed copy is made from."""
    return mr_dataset(mr_slice(size))


def encoded(syntax: UID, size: int = 96) -> bytes:
    """The same 12-bit slice as ``original`` (8-bit for baseline JPEG), encoded in ``syntax``."""
    if syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
        ds = original(size)
        ds.file_meta.TransferSyntaxUID = syntax  # pydicom writes (and deflates) by the syntax
        return to_bytes(ds)
    if syntax == JPEGBaseline8Bit:
        return baseline_jpeg(eight_bit_original(size))
    if syntax in _GDCM_SYNTAXES:
        return gdcm_transcode(to_bytes(original(size)), syntax)
    ds = original(size)
    options = {
        JPEGLSNearLossless: {"jls_error": JLS_NEAR_LOSSLESS_ERROR},
        JPEG2000: {"j2k_cr": [8]},
    }.get(syntax, {})
    if syntax not in (RLELossless, JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000):
        raise ValueError(f"no encoder here for {syntax.name}")
    ds.compress(syntax, **options)
    return to_bytes(ds)


def eight_bit_original(size: int = 96) -> Dataset:
    """An 8-bit version of the slice: baseline JPEG holds 8 bits only."""
    return mr_dataset((mr_slice(size) >> 4).astype(np.uint8), bits=8)


def baseline_jpeg(ds: Dataset, quality: int = 95) -> bytes:
    """``ds`` (8-bit grey) as JPEG Baseline, the JPEG written by Pillow (libjpeg-turbo)."""
    buffer = io.BytesIO()
    Image.fromarray(ds.pixel_array, mode="L").save(buffer, format="JPEG", quality=quality)
    ds.PixelData = encapsulate([buffer.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.LossyImageCompression = "01"
    return to_bytes(ds)


def gdcm_transcode(data: bytes, syntax: UID) -> bytes:
    """A DICOM file re-encoded by GDCM's own encoder (which works on files)."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder, "in.dcm"), Path(folder, "out.dcm")
        source.write_bytes(data)
        reader = gdcm.ImageReader()
        reader.SetFileName(str(source))
        if not reader.Read():
            raise RuntimeError("GDCM could not read the source file")
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(_GDCM_SYNTAXES[syntax]))
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise RuntimeError(f"GDCM could not encode {syntax.name}")
        writer = gdcm.ImageWriter()
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        writer.SetFileName(str(target))
        if not writer.Write():
            raise RuntimeError("GDCM could not write the file")
        written = target.read_bytes()
    assert pydicom.dcmread(io.BytesIO(written)).file_meta.TransferSyntaxUID == syntax
    return written


def with_syntax(syntax: str, codestream: bytes = b"\x00\x00\x00\x01" + b"\x42" * 256) -> bytes:
    """The original slice claiming to be encoded in ``syntax``, with a made-up codestream."""
    ds = original()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    # A syntax pydicom does not know needs the encoding of the rest of the data set said.
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


def numbered_frames(count: int, size: int = 96) -> np.ndarray:
    """``count`` 12-bit frames, frame k (1-based) with a bright square at row 8 * k."""
    frames = np.stack([mr_slice(size)] * count)
    for k in range(1, count + 1):
        frames[k - 1, 8 * k : 8 * k + 6, 4:10] = 4000
    return frames


def multi_frame(frames: np.ndarray) -> Dataset:
    """A legacy multi-frame MR (NumberOfFrames, frames stacked in PixelData)."""
    return mr_dataset(frames)


def enhanced_mr(
    frames: np.ndarray,
    slope: float,
    intercept: float,
    windows: list[tuple[float, float]],
) -> Dataset:
    """Enhanced MR Image Storage: the rescale in the shared functional groups, a window per
    frame in the per-frame ones (PS3.3 C.7.6.16), nothing of either at the top level."""
    ds = mr_dataset(frames)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EnhancedMRImageStorage
    transformation = Dataset()
    transformation.RescaleSlope = slope
    transformation.RescaleIntercept = intercept
    transformation.RescaleType = "US"
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transformation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for centre, width in windows:
        voi = Dataset()
        voi.WindowCenter = centre
        voi.WindowWidth = width
        group = Dataset()
        group.FrameVOILUTSequence = Sequence([voi])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    return ds
