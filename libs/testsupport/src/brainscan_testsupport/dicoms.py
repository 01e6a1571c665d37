"""MR DICOM files written in memory with pydicom, carrying made-up patient data.

The patient name and ID are there to be looked for: a test asserts they never appear in an
answer, an error message or a log line.
"""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import set_pixel_data
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

PATIENT_NAME = "Doe^Janet"
PATIENT_ID = "PID-8675309"
PATIENT_BIRTH_DATE = "19700101"


def mr_dataset(
    pixels: np.ndarray | None,
    photometric: str = "MONOCHROME2",
    bits: int = 12,
    *,
    patient_name: str = PATIENT_NAME,
    patient_id: str = PATIENT_ID,
) -> Dataset:
    """A single-frame MR image data set (explicit VR little endian) of ``pixels``, stored with
    ``bits`` bits; ``pixels=None`` leaves the pixel data out (a header-only file)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = PATIENT_BIRTH_DATE
    ds.StudyDescription = "BRAIN W/O CONTRAST"
    if pixels is not None:
        set_pixel_data(ds, pixels, photometric, bits)
    return ds


def to_bytes(ds: Dataset) -> bytes:
    """``ds`` as the bytes of a DICOM file (preamble, "DICM", file meta information)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def mr_slice(size: int = 96) -> np.ndarray:
    """12-bit MR-like values (uint16): dark background, tissue around 1500, a bright lesion."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    head = ((xx - 0.5) / 0.4) ** 2 + ((yy - 0.5) / 0.45) ** 2 < 1
    lesion = ((xx - 0.6) ** 2 + (yy - 0.4) ** 2) < 0.005
    values = np.where(head, 1500 + 300 * np.sin(xx * 11), 20) + np.where(lesion, 1800, 0)
    return values.astype(np.uint16)
