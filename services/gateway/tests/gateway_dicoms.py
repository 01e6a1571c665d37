"""DICOM files written in memory with pydicom, with fake patient data to prove it never leaks."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import set_pixel_data
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

PATIENT_NAME = "Doe^Janet"
PATIENT_ID = "PID-8675309"


def dataset(pixels: np.ndarray | None, photometric: str = "MONOCHROME2", bits: int = 12) -> Dataset:
    """An MR image data set; ``pixels=None`` leaves the pixel data out."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19700101"
    ds.StudyDescription = "BRAIN W/O CONTRAST"
    if pixels is not None:
        set_pixel_data(ds, pixels, photometric, bits)
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def mr_slice(size: int = 96) -> np.ndarray:
    """12-bit MR-like values: dark background, tissue around 1500, a bright lesion."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    head = ((xx - 0.5) / 0.4) ** 2 + ((yy - 0.5) / 0.45) ** 2 < 1
    lesion = ((xx - 0.6) ** 2 + (yy - 0.4) ** 2) < 0.005
    values = np.where(head, 1500 + 300 * np.sin(xx * 11), 20) + np.where(lesion, 1800, 0)
    return values.astype(np.uint16)
