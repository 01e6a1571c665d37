"""The DICOM files read back with pydicom as MR images with their made-up patient."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from brainscan_testsupport.dicoms import (
    PATIENT_ID,
    PATIENT_NAME,
    mr_dataset,
    mr_slice,
    to_bytes,
)
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def test_an_mr_slice_reads_back_with_its_pixels_and_patient() -> None:
    pixels = mr_slice(64)
    ds = read(to_bytes(mr_dataset(pixels)))

    assert data_is_a_dicom_file(to_bytes(mr_dataset(pixels)))
    assert ds.Modality == "MR" and ds.SOPClassUID == MRImageStorage
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
    assert str(ds.PatientName) == PATIENT_NAME and ds.PatientID == PATIENT_ID
    assert ds.BitsStored == 12 and ds.PhotometricInterpretation == "MONOCHROME2"
    np.testing.assert_array_equal(ds.pixel_array, pixels)


def data_is_a_dicom_file(data: bytes) -> bool:
    return data[128:132] == b"DICM"


def test_the_mr_slice_is_12_bit_with_a_lesion_brighter_than_tissue() -> None:
    pixels = mr_slice(96)
    assert pixels.dtype == np.uint16 and pixels.shape == (96, 96)
    assert pixels.max() < 4096
    assert pixels[0, 0] < 100 < 1000 < np.median(pixels[30:60, 30:60]) < pixels.max() - 1000


def test_the_patient_and_the_photometric_interpretation_can_be_chosen() -> None:
    rgb = np.zeros((16, 16, 3), np.uint8)
    ds = read(to_bytes(mr_dataset(rgb, "RGB", 8, patient_name="Roe^Rick", patient_id="X-1")))
    assert str(ds.PatientName) == "Roe^Rick" and ds.PatientID == "X-1"
    assert ds.SamplesPerPixel == 3 and ds.BitsStored == 8


def test_a_header_only_file_has_no_pixel_data() -> None:
    ds = read(to_bytes(mr_dataset(None)))
    assert "PixelData" not in ds and str(ds.PatientName) == PATIENT_NAME
