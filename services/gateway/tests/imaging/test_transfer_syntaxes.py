"""Every common transfer syntax decodes to the right pixels, or is refused with a 415 naming it.

Two sources, neither downloaded: pydicom's own test files that ship inside the pydicom package
(``get_testdata_file(..., download=False)``), and copies of one 12-bit MR slice encoded here
(gateway_dicoms). Lossless copies must render exactly as the uncompressed original; lossy ones
within the error their encoder was given.
"""

import io
import logging
import tomllib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from brainscan_gateway.errors import BadUpload, ErrorCode
from brainscan_gateway.imaging import transfer_syntax
from brainscan_gateway.imaging.decoding import decode_upload
from brainscan_gateway.imaging.dicom import render_grey
from brainscan_gateway.imaging.limits import DecodeLimits
from brainscan_testsupport.dicoms import PATIENT_ID, PATIENT_NAME, to_bytes
from gateway_dicoms import (
    JLS_NEAR_LOSSLESS_ERROR,
    eight_bit_original,
    encoded,
    original,
    with_syntax,
)
from pydicom.data import get_testdata_file
from pydicom.pixels import get_decoder
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
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

LIMITS = DecodeLimits(max_pixels=4_000_000, min_side=8)
REPOSITORY = Path(__file__).resolve().parents[4]


def rendered(data: bytes) -> np.ndarray:
    return np.asarray(decode_upload(data, LIMITS).image).astype(int)


def pydicom_file(name: str) -> bytes:
    """One of pydicom's test files, from the installed package only (never downloaded)."""
    path = get_testdata_file(name, download=False)
    assert path is not None, f"{name} is not in the installed pydicom package"
    return Path(path).read_bytes()


# --- the decoders installed are the ones chosen, by licence ---------------------------------


def test_every_listed_syntax_has_an_installed_decoder():
    missing = [s.name for s in transfer_syntax.DECODED_SYNTAXES if not get_decoder(s).is_available]
    assert missing == []


def test_no_gpl_decoder_is_locked_for_the_gateway():
    """pylibjpeg-libjpeg (GPL-3) would make the gateway image GPL: it must not be in the lock."""
    lock = tomllib.loads((REPOSITORY / "uv.lock").read_text())
    names = {package["name"] for package in lock["package"]}
    assert {"python-gdcm", "pylibjpeg-openjpeg", "pylibjpeg-rle", "pyjpegls"} <= names
    assert "pylibjpeg-libjpeg" not in names


# --- lossless: exactly the original's pixels ------------------------------------------------


@pytest.mark.parametrize(
    "syntax",
    [
        ImplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        RLELossless,
        JPEGLossless,  # .57, GDCM
        JPEGLosslessSV1,  # .70, GDCM
        JPEGLSLossless,  # .80
        JPEG2000Lossless,  # .90
    ],
    ids=lambda syntax: syntax.name,
)
def test_lossless_syntaxes_render_exactly_as_the_original(syntax):
    data = encoded(syntax)
    assert pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(rendered(data), rendered(to_bytes(original())))


@pytest.mark.parametrize(
    "name",
    [
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
    ],
)
def test_pydicom_test_files_render_as_their_uncompressed_original(name):
    np.testing.assert_array_equal(
        rendered(pydicom_file(name)), rendered(pydicom_file("MR_small.dcm"))
    )


def test_pydicom_jpeg_lossless_colour_file_matches_its_rle_copy():
    # Both are the same RGB image, one as JPEG lossless SV1 (GDCM), one as RLE (pydicom).
    jpeg = decode_upload(pydicom_file("SC_rgb_jpeg_gdcm.dcm"), LIMITS).image
    rle = decode_upload(pydicom_file("SC_rgb_rle.dcm"), LIMITS).image
    assert jpeg.mode == rle.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(jpeg), np.asarray(rle))


def test_pydicom_deflated_file_decodes():
    ds = pydicom.dcmread(get_testdata_file("image_dfl.dcm", download=False))
    assert ds.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    image = decode_upload(pydicom_file("image_dfl.dcm"), LIMITS).image
    assert image.size == (ds.Columns, ds.Rows) and np.asarray(image).std() > 10


# --- lossy: the original's pixels within the encoder's error ---------------------------------


def stored(data: bytes) -> np.ndarray:
    ds = pydicom.dcmread(io.BytesIO(data))
    return ds.pixel_array.astype(int)


def test_jpeg_ls_near_lossless_is_within_its_error_bound():
    data = encoded(JPEGLSNearLossless)
    reference = original().pixel_array.astype(int)
    assert np.abs(stored(data) - reference).max() <= JLS_NEAR_LOSSLESS_ERROR
    # 8-bit rendering of 12-bit values: a step of 3 stored values moves at most one grey level.
    assert np.abs(rendered(data) - rendered(to_bytes(original()))).max() <= 1


def test_jpeg_2000_lossy_is_close_to_the_original():
    data = encoded(JPEG2000)
    difference = np.abs(rendered(data) - rendered(to_bytes(original())))
    assert difference.mean() < 2 and np.percentile(difference, 99) <= 12


def test_jpeg_baseline_is_close_to_the_original():
    data = encoded(JPEGBaseline8Bit)
    reference = rendered(to_bytes(eight_bit_original()))
    difference = np.abs(rendered(data) - reference)
    assert difference.mean() < 2 and np.percentile(difference, 99) <= 12


def test_jpeg_extended_12_bit_is_close_to_the_original():
    # pydicom's gdcm plugin declines 12-bit JPEG Extended; the gateway's own GDCM plugin takes it.
    data = encoded(JPEGExtended12Bit)
    ds = pydicom.dcmread(io.BytesIO(data))
    assert ds.file_meta.TransferSyntaxUID == JPEGExtended12Bit and ds.BitsStored == 12
    reference = original().pixel_array.astype(int)
    assert np.abs(stored(data) - reference).mean() < 8  # of 4096 levels
    difference = np.abs(rendered(data) - rendered(to_bytes(original())))
    assert difference.mean() < 1 and difference.max() <= 8


@pytest.mark.parametrize("name", ["JPGExtended.dcm", "JPEG-lossy.dcm"])
def test_pydicom_12_bit_jpeg_extended_files_give_pydicoms_reference_values(name):
    # The values pydicom's own reference data expects of JPGExtended.dcm (decoded there by
    # libjpeg); JPEG-lossy.dcm is the same image with a malformed scan header, which GDCM reads.
    values = stored(pydicom_file(name))
    assert values[420, 140] == 244 and values[230, 120] == 95
    assert decode_upload(pydicom_file(name), LIMITS).image.size == (256, 1024)


@pytest.mark.parametrize(
    "name",
    ["SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+s2.dcm", "SC_rgb_jpeg_lossy_gdcm.dcm"],
)
def test_pydicom_baseline_jpeg_colour_files_are_close_to_their_rle_copy(name):
    # The same test picture as SC_rgb_rle.dcm, as baseline JPEG (YBR, 4:4:4 or 4:2:2).
    jpeg = np.asarray(decode_upload(pydicom_file(name), LIMITS).image).astype(int)
    rle = np.asarray(decode_upload(pydicom_file("SC_rgb_rle.dcm"), LIMITS).image).astype(int)
    assert jpeg.shape == rle.shape and np.abs(jpeg - rle).mean() < 3


@pytest.mark.parametrize("name", ["JPEGLSNearLossless_16.dcm", "JPEG2000.dcm", "693_J2KI.dcm"])
def test_other_pydicom_compressed_files_decode(name):
    image = decode_upload(pydicom_file(name), LIMITS).image
    assert np.asarray(image).std() > 1  # a picture, not a blank


def test_jpeg_2000_colour_transforms_give_rgb():
    for name in ("examples_jpeg2k.dcm", "GDCMJ2K_TextGBR.dcm"):  # YBR_RCT
        assert decode_upload(pydicom_file(name), LIMITS).image.mode == "RGB"


def test_render_grey_is_what_decoding_applies():
    # The lossless comparisons above go through the whole decoder; this pins the renderer they
    # share to the stored values, so "equal renderings" means equal stored values.
    ds = original()
    np.testing.assert_array_equal(
        render_grey(ds.pixel_array, ds), rendered(to_bytes(original())).astype(np.uint8)
    )


# --- refused, with the syntax named ---------------------------------------------------------


@pytest.mark.parametrize(
    ("syntax", "named"),
    [
        ("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1"),
        ("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level"),
        ("1.2.826.0.1.3680043.99.1", "an unknown transfer syntax"),
    ],
)
def test_undecodable_syntax_is_415_naming_it_and_what_to_send(syntax, named):
    with pytest.raises(BadUpload) as caught:
        decode_upload(with_syntax(syntax), LIMITS)
    error = caught.value
    assert error.code is ErrorCode.DICOM_UNSUPPORTED and error.status == 415
    assert f"{named} ({syntax})" in error.message
    assert "Explicit VR Little Endian" in error.message


def test_damaged_codestream_of_a_decodable_syntax_is_corrupt_naming_it():
    with pytest.raises(BadUpload) as caught:
        decode_upload(with_syntax(JPEG2000Lossless, b"\xff\x4f\xff\x51" + b"\x00" * 200), LIMITS)
    assert caught.value.code is ErrorCode.CORRUPT_IMAGE and caught.value.status == 422
    assert "JPEG 2000 Image Compression (Lossless Only) (1.2.840.10008.1.2.4.90)" in (
        caught.value.message
    )


def test_a_transfer_syntax_that_is_not_a_uid_is_not_quoted():
    assert transfer_syntax.describe(PATIENT_NAME) == "an invalid transfer syntax UID"
    assert transfer_syntax.describe(ExplicitVRLittleEndian) == (
        "Explicit VR Little Endian (1.2.840.10008.1.2.1)"
    )


def test_patient_data_never_appears_in_decoding_errors_or_logs(caplog, capfd):
    bad = [
        with_syntax("1.2.840.10008.1.2.4.102"),
        with_syntax(JPEG2000Lossless, b"\xff\x4f\xff\x51" + b"\x00" * 200),
        with_syntax(JPEGLSLossless, b"\xff\xd8\xff\xf7" + b"\x00" * 64),
        encoded(JPEGLossless)[:-300],
    ]
    with caplog.at_level(logging.DEBUG):
        for data in bad:
            with pytest.raises(BadUpload) as caught:
                decode_upload(data, LIMITS)
            assert PATIENT_NAME not in caught.value.message
            assert PATIENT_ID not in caught.value.message
        for syntax in (JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000):
            decode_upload(encoded(syntax), LIMITS)
    captured = capfd.readouterr()  # what the native codecs print goes to the process's stderr
    for text in (caplog.text, captured.out, captured.err):
        assert PATIENT_NAME not in text and PATIENT_ID not in text and "Doe" not in text
