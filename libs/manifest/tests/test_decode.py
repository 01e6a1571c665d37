"""The shared normalisation of decoded images: orientation, bit depth, palette and alpha."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from brainscan_manifest.decode import stretch_to_uint8, to_eight_bit, upright_eight_bit
from PIL import Image, ImageOps


def reopened(image: Image.Image, fmt: str, **options) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return Image.open(io.BytesIO(buffer.getvalue()))


def ramp(height: int = 40, width: int = 60) -> np.ndarray:
    """An asymmetric uint8 picture: every flip and rotation of it is different."""
    yy, xx = np.mgrid[0:height, 0:width]
    return ((xx * 3 + yy * 7) % 256).astype(np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows_exif_transpose(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    image = reopened(Image.fromarray(ramp()), "PNG", exif=exif.tobytes())
    expected = ImageOps.exif_transpose(image)
    result = upright_eight_bit(image)
    assert result.mode == "L"
    np.testing.assert_array_equal(np.asarray(result), np.asarray(expected))


def test_orientation_is_applied_after_sixteen_bit_stretching():
    exif = Image.Exif()
    exif[0x0112] = 6
    values = ramp().astype(np.uint16) * 200
    image = reopened(Image.fromarray(values), "PNG", exif=exif.tobytes())
    assert image.mode.startswith("I")
    result = upright_eight_bit(image)
    assert result.size == (40, 60)
    expected = np.rot90(stretch_to_uint8(values), k=-1)  # 6: rotate 90° clockwise
    np.testing.assert_array_equal(np.asarray(result), expected)


def test_malformed_exif_keeps_the_image_readable():
    image = Image.fromarray(ramp())
    image.info["exif"] = b"Exif\x00\x00garbage"
    assert upright_eight_bit(image).size == (60, 40)


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_high_depth_images_are_stretched_to_their_own_range(mode):
    values = ramp().astype(np.float64) * 10 + 1000
    sixteen_bit = Image.fromarray(values.astype(np.uint16))
    image = sixteen_bit if mode == "I;16" else sixteen_bit.convert(mode)
    assert image.mode == mode
    result = np.asarray(to_eight_bit(image))
    assert result.min() == 0 and result.max() == 255
    expected = np.rint((values - values.min()) * 255 / (values.max() - values.min()))
    np.testing.assert_array_equal(result, expected.astype(np.uint8))


def test_stretch_handles_flat_and_non_finite_values():
    assert stretch_to_uint8(np.full((4, 4), 7.0)).max() == 0
    assert stretch_to_uint8(np.full((4, 4), np.nan)).max() == 0
    assert stretch_to_uint8(np.zeros((0, 4), np.uint16)).shape == (0, 4)
    stretched = stretch_to_uint8(np.array([[0.0, np.inf], [5.0, 10.0]]))
    assert stretched.tolist() == [[0, 0], [128, 255]]
    assert stretch_to_uint8(np.array([3, 5, 7], np.uint16)).tolist() == [0, 128, 255]
    assert stretch_to_uint8(np.array([-5, 0, 5], np.int32)).tolist() == [0, 128, 255]


def test_stretching_a_large_array_needs_about_its_eight_bit_result():
    values = np.arange(4_000_000, dtype=np.float32).reshape(2000, 2000)
    tracemalloc.start()
    try:
        stretch_to_uint8(values)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The result is 4 MB; a float64 computation on the whole array would need 32 MB per copy.
    assert peak < values.size * 1 + 8_000_000


def test_rgba_is_composited_over_black():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :20, 3] = 255
    result = upright_eight_bit(Image.fromarray(rgba, "RGBA"))
    assert result.mode == "RGB"
    pixels = np.asarray(result)
    assert (pixels[:, :20, 0] == 200).all() and (pixels[:, 20:] == 0).all()


def test_grey_with_alpha_stays_grey():
    la = Image.merge("LA", [Image.new("L", (8, 8), 180), Image.new("L", (8, 8), 128)])
    result = upright_eight_bit(la)
    assert result.mode == "L" and abs(int(np.asarray(result)[0, 0]) - 90) <= 1


def test_palette_with_and_without_transparency():
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([255, 255, 255, 200, 10, 10] + [0] * 762)
    assert np.asarray(upright_eight_bit(palette))[0, 0].tolist() == [200, 10, 10]
    transparent = reopened(palette, "PNG", transparency=1)
    assert np.asarray(upright_eight_bit(transparent)).max() == 0


@pytest.mark.parametrize(("mode", "expected"), [("1", "L"), ("CMYK", "RGB"), ("L", "L")])
def test_other_modes_become_grey_or_rgb(mode, expected):
    assert upright_eight_bit(Image.new(mode, (8, 8))).mode == expected
