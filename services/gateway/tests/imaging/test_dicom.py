import logging

import numpy as np
import pytest
from brainscan_gateway.errors import BadUpload, ErrorCode
from brainscan_gateway.imaging.decoding import decode_upload
from brainscan_gateway.imaging.dicom import apply_window
from brainscan_gateway.imaging.limits import DecodeLimits
from brainscan_gateway.imaging.upload_format import UploadFormat
from brainscan_testsupport.dicoms import PATIENT_ID, PATIENT_NAME, mr_dataset, mr_slice, to_bytes
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG4HP41

LIMITS = DecodeLimits(max_pixels=4_000_000, min_side=32)


def render(ds) -> np.ndarray:
    result = decode_upload(to_bytes(ds), LIMITS)
    assert result.source_format is UploadFormat.DICOM
    return np.asarray(result.image)


def test_plain_monochrome2_is_stretched_to_full_range():
    pixels = render(mr_dataset(mr_slice()))
    assert pixels.dtype == np.uint8 and pixels.shape == (96, 96)
    assert pixels.min() == 0 and pixels.max() == 255
    values = mr_slice()
    assert pixels[values.argmax() // 96, values.argmax() % 96] == 255


def test_window_centre_and_width_are_applied():
    ds = mr_dataset(mr_slice())
    ds.WindowCenter = 1500
    ds.WindowWidth = 400
    pixels = render(ds)
    values = mr_slice()
    assert (pixels[values <= 1300] == 0).all()  # below the window: black
    assert (pixels[values >= 1700] == 255).all()  # above it: white
    inside = (values > 1310) & (values < 1690)
    assert pixels[inside].min() > 0 and pixels[inside].max() < 255


def test_first_of_several_windows_is_used():
    ds = mr_dataset(mr_slice())
    ds.WindowCenter = [1500, 40]
    ds.WindowWidth = [400, 80]
    assert (render(ds)[mr_slice() >= 1700] == 255).all()


def test_rescale_slope_and_intercept_come_before_the_window():
    ds = mr_dataset(mr_slice())
    ds.RescaleSlope = 2
    ds.RescaleIntercept = -1000
    ds.WindowCenter = 2000  # in rescaled units: stored 1500 -> 2000
    ds.WindowWidth = 800
    pixels = render(ds)
    values = mr_slice()
    assert (pixels[values <= 1300] == 0).all()
    assert (pixels[values >= 1700] == 255).all()


def test_monochrome1_is_inverted():
    normal = render(mr_dataset(mr_slice()))
    inverted = render(mr_dataset(mr_slice(), photometric="MONOCHROME1"))
    np.testing.assert_array_equal(inverted, 255 - normal)


def test_unusable_window_falls_back_to_full_range():
    ds = mr_dataset(mr_slice())
    ds.WindowCenter = 100
    ds.WindowWidth = 0
    assert render(ds).max() == 255


def test_rgb_dicom_gives_rgb():
    rgb = np.stack([mr_slice().astype(np.uint8)] * 3, axis=-1)
    result = decode_upload(to_bytes(mr_dataset(rgb, photometric="RGB", bits=8)), LIMITS)
    assert result.image.mode == "RGB"


def test_signed_pixels_are_rendered():
    values = mr_slice().astype(np.int16) - 1000
    pixels = render(mr_dataset(values, bits=16))
    assert pixels.min() == 0 and pixels.max() == 255


def test_no_pixel_data_says_so():
    with pytest.raises(BadUpload) as caught:
        decode_upload(to_bytes(mr_dataset(None)), LIMITS)
    assert caught.value.code is ErrorCode.DICOM_NO_PIXEL_DATA
    assert "no pixel data" in caught.value.message


def test_truncated_pixel_data_is_corrupt():
    data = to_bytes(mr_dataset(mr_slice()))
    with pytest.raises(BadUpload) as caught:
        decode_upload(data[:-1000], LIMITS)
    assert caught.value.code is ErrorCode.CORRUPT_IMAGE


def test_truncated_header_is_corrupt():
    data = to_bytes(mr_dataset(mr_slice()))
    with pytest.raises(BadUpload) as caught:
        decode_upload(data[:140], LIMITS)
    # Cut inside the file meta: nothing after it survives, so there is no image to find.
    assert caught.value.code in (ErrorCode.CORRUPT_IMAGE, ErrorCode.DICOM_NO_PIXEL_DATA)


def test_too_many_pixels_is_refused_before_decoding():
    ds = mr_dataset(mr_slice())
    ds.Rows = ds.Columns = 30_000  # header claims far more than the pixel data holds
    with pytest.raises(BadUpload) as caught:
        decode_upload(to_bytes(ds), LIMITS)
    assert caught.value.code is ErrorCode.TOO_MANY_PIXELS


def test_too_small_is_refused():
    with pytest.raises(BadUpload) as caught:
        decode_upload(to_bytes(mr_dataset(mr_slice(16))), LIMITS)
    assert caught.value.code is ErrorCode.IMAGE_TOO_SMALL


def test_unsupported_photometric_is_named():
    ds = mr_dataset(mr_slice())
    ds.PhotometricInterpretation = "PALETTE COLOR"
    with pytest.raises(BadUpload) as caught:
        decode_upload(to_bytes(ds), LIMITS)
    assert caught.value.code is ErrorCode.DICOM_UNSUPPORTED
    assert caught.value.status == 415
    assert "PALETTE COLOR" in caught.value.message


def test_undecodable_transfer_syntax_is_named():
    ds = mr_dataset(mr_slice())
    ds.file_meta.TransferSyntaxUID = MPEG4HP41
    ds.PixelData = encapsulate([b"\x00\x00\x00\x01" + b"\x00" * 200])  # a video, in effect
    with pytest.raises(BadUpload) as caught:
        decode_upload(to_bytes(ds), LIMITS)
    assert caught.value.code is ErrorCode.DICOM_UNSUPPORTED and caught.value.status == 415
    assert "MPEG-4 AVC/H.264 High Profile / Level 4.1 (1.2.840.10008.1.2.4.102)" in (
        caught.value.message
    )


def test_patient_data_never_appears_in_errors_or_logs(caplog):
    bad_inputs = [mr_dataset(None)]
    ds = mr_dataset(mr_slice())
    ds.PhotometricInterpretation = "PALETTE COLOR"
    bad_inputs.append(ds)
    with caplog.at_level(logging.DEBUG):
        for ds in bad_inputs:
            with pytest.raises(BadUpload) as caught:
                decode_upload(to_bytes(ds), LIMITS)
            assert PATIENT_NAME not in caught.value.message
            assert PATIENT_ID not in caught.value.message
    assert PATIENT_NAME not in caplog.text and PATIENT_ID not in caplog.text


@pytest.mark.parametrize(
    ("function", "at_centre"),
    [("LINEAR", 128), ("LINEAR_EXACT", 128), ("SIGMOID", 128)],
)
def test_window_functions_put_the_centre_mid_grey(function, at_centre):
    values = np.array([0.0, 100.0, 200.0])
    out = apply_window(values, centre=100.0, width=50.0, function=function)
    assert abs(int(out[1]) - at_centre) <= 2  # LINEAR centres on c - 0.5 (PS3.3 C.11.2.1.2)
    assert out[0] <= 1 and out[2] >= 254
