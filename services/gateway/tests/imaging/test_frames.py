"""Multi-frame DICOM: one frame is classified, by the documented rule, rendered with its own
rescale and window (enhanced MR keeps them in the functional groups)."""

import logging

import numpy as np
import pytest
from brainscan_gateway.errors import BadUpload, ErrorCode
from brainscan_gateway.imaging.decoding import decode_upload
from brainscan_gateway.imaging.dicom import apply_window
from brainscan_gateway.imaging.frames import FrameChoice, choose_frame
from brainscan_gateway.imaging.limits import DecodeLimits
from brainscan_testsupport.dicoms import PATIENT_ID, PATIENT_NAME, mr_dataset, to_bytes
from gateway_dicoms import enhanced_mr, multi_frame, numbered_frames
from gateway_images import png_bytes
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

LIMITS = DecodeLimits(max_pixels=4_000_000, min_side=32)


def rendered(data: bytes, frame: int | None = None) -> tuple[np.ndarray, FrameChoice | None]:
    decoded = decode_upload(data, LIMITS, frame)
    return np.asarray(decoded.image), decoded.frame


def single(frame: np.ndarray) -> np.ndarray:
    """How the same pixels render as a single-frame file."""
    return rendered(to_bytes(mr_dataset(frame)))[0]


@pytest.mark.parametrize(
    ("count", "middle"), [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3), (31, 16)]
)
def test_the_middle_frame_is_count_plus_one_halved(count, middle):
    assert choose_frame(count, None) == middle


def test_default_is_the_middle_frame_and_the_answer_says_so():
    frames = numbered_frames(5)
    pixels, frame = rendered(to_bytes(multi_frame(frames)))
    assert frame == FrameChoice(index=3, count=5)
    np.testing.assert_array_equal(pixels, single(frames[2]))


@pytest.mark.parametrize("asked", [1, 2, 5])
def test_the_frame_asked_for_is_classified(asked):
    frames = numbered_frames(5)
    pixels, frame = rendered(to_bytes(multi_frame(frames)), asked)
    assert frame == FrameChoice(index=asked, count=5)
    np.testing.assert_array_equal(pixels, single(frames[asked - 1]))
    # The marker of frame k sits at rows 8k..8k+5: only that one is bright there.
    assert pixels[8 * asked + 2, 6] == 255


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless])
def test_a_compressed_multi_frame_file_decodes_the_frame_asked_for(syntax):
    frames = numbered_frames(4)
    ds = multi_frame(frames)
    ds.compress(syntax)
    pixels, frame = rendered(to_bytes(ds), 4)
    assert frame == FrameChoice(index=4, count=4)
    np.testing.assert_array_equal(pixels, single(frames[3]))


@pytest.mark.parametrize("asked", [0, 6, 99])
def test_a_frame_out_of_range_is_422_with_the_frame_count(asked):
    with pytest.raises(BadUpload) as caught:
        rendered(to_bytes(multi_frame(numbered_frames(5))), asked)
    error = caught.value
    assert error.code is ErrorCode.FRAME_OUT_OF_RANGE and error.status == 422
    assert f"frame {asked}" in error.message and "5 frames (numbered 1 to 5)" in error.message


def test_single_frame_images_have_frame_1_only_and_no_frame_in_the_answer():
    dicom = to_bytes(mr_dataset(numbered_frames(1)[0]))
    assert rendered(dicom)[1] is None and rendered(dicom, 1)[1] is None
    assert decode_upload(png_bytes(64), LIMITS, 1).frame is None
    for data, what in ((dicom, "1 frame"), (png_bytes(64), "one frame")):
        with pytest.raises(BadUpload) as caught:
            decode_upload(data, LIMITS, 2)
        assert caught.value.code is ErrorCode.FRAME_OUT_OF_RANGE and what in caught.value.message


def test_enhanced_mr_renders_each_frame_with_its_own_window_and_the_shared_rescale():
    frames = numbered_frames(3)
    slope, intercept = 2.0, -1000.0
    windows = [(2000.0, 800.0), (2000.0, 3000.0), (500.0, 400.0)]
    ds = enhanced_mr(frames, slope, intercept, windows)
    assert "WindowCenter" not in ds and "RescaleSlope" not in ds  # only in the groups
    data = to_bytes(ds)
    for index, (centre, width) in enumerate(windows, start=1):
        pixels, frame = rendered(data, index)
        assert frame == FrameChoice(index=index, count=3)
        modality = frames[index - 1].astype(np.float64) * slope + intercept
        np.testing.assert_array_equal(pixels, apply_window(modality, centre, width, "LINEAR"))


def test_enhanced_mr_per_frame_rescale_overrides_the_shared_one():
    frames = numbered_frames(2)
    ds = enhanced_mr(frames, 1.0, 0.0, [(1500.0, 600.0)] * 2)
    # Frame 2 gets its own Pixel Value Transformation, shifting every value by +1000.
    own = Dataset()
    own.RescaleSlope, own.RescaleIntercept, own.RescaleType = 1, 1000, "US"
    ds.PerFrameFunctionalGroupsSequence[1].PixelValueTransformationSequence = [own]
    data = to_bytes(ds)
    first, _ = rendered(data, 1)
    second, _ = rendered(data, 2)
    np.testing.assert_array_equal(first, apply_window(frames[0], 1500.0, 600.0, "LINEAR"))
    np.testing.assert_array_equal(
        second, apply_window(frames[1].astype(float) + 1000, 1500.0, 600.0, "LINEAR")
    )


def test_a_legacy_multi_frame_uses_its_top_level_window_for_every_frame():
    frames = numbered_frames(3)
    ds = multi_frame(frames)
    ds.WindowCenter, ds.WindowWidth = 1500, 400
    pixels, _ = rendered(to_bytes(ds), 3)
    np.testing.assert_array_equal(pixels, apply_window(frames[2], 1500.0, 400.0, "LINEAR"))


def test_patient_data_never_appears_in_frame_errors_or_logs(caplog):
    data = to_bytes(enhanced_mr(numbered_frames(3), 1.0, 0.0, [(1500.0, 600.0)] * 3))
    with caplog.at_level(logging.DEBUG):
        rendered(data)
        with pytest.raises(BadUpload) as caught:
            rendered(data, 4)
    assert PATIENT_NAME not in caught.value.message and PATIENT_ID not in caught.value.message
    assert PATIENT_NAME not in caplog.text and PATIENT_ID not in caplog.text
