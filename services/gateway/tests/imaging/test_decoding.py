import io
import tracemalloc

import numpy as np
import pytest
from brainscan_gateway.errors import BadUpload, ErrorCode
from brainscan_gateway.imaging.decoding import decode_upload
from brainscan_gateway.imaging.limits import DecodeLimits
from brainscan_gateway.imaging.upload_format import UploadFormat
from brainscan_gateway.settings import GatewaySettings
from gateway_images import encode, jpeg_bytes, mri_like, png_bomb, png_bytes, png_header_bomb
from PIL import Image

LIMITS = DecodeLimits(max_pixels=4_000_000, min_side=32)


def decoded_array(data: bytes) -> np.ndarray:
    return np.asarray(decode_upload(data, LIMITS).image)


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_eight_bit_png_keeps_its_pixels(mode):
    result = decode_upload(png_bytes(64, mode), LIMITS)
    assert result.source_format is UploadFormat.PNG
    assert result.image.mode == mode
    expected = np.asarray(Image.fromarray(mri_like(64)).convert(mode))
    np.testing.assert_array_equal(np.asarray(result.image), expected)


def test_jpeg_decodes_to_rgb_close_to_the_original():
    result = decode_upload(jpeg_bytes(64), LIMITS)
    assert result.source_format is UploadFormat.JPEG
    assert result.image.mode == "RGB"
    assert result.size == (64, 64)
    grey = np.asarray(result.image.convert("L"), dtype=float)
    assert np.abs(grey - mri_like(64)).mean() < 6


def test_greyscale_jpeg_stays_grey():
    assert decode_upload(jpeg_bytes(64, mode="L"), LIMITS).image.mode == "L"


def test_cmyk_jpeg_becomes_rgb():
    assert decode_upload(jpeg_bytes(64, mode="CMYK"), LIMITS).image.mode == "RGB"


def test_sixteen_bit_png_is_stretched_to_its_own_range():
    values = mri_like(64).astype(np.uint16) * 16  # 12-bit data stored in 16 bits
    data = encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    result = decode_upload(data, LIMITS).image
    assert result.mode == "L"
    pixels = np.asarray(result)
    assert pixels.min() == 0 and pixels.max() == 255
    # Order is preserved: the brightest stored value is the brightest rendered one.
    assert pixels[np.unravel_index(values.argmax(), values.shape)] == 255


def test_palette_png_is_expanded_to_rgb():
    palette_image = Image.fromarray(mri_like(64)).convert("RGB").quantize(colors=16)
    result = decode_upload(encode(palette_image, "PNG"), LIMITS).image
    assert result.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(result), np.asarray(palette_image.convert("RGB")))


def test_palette_png_with_transparency_goes_over_black():
    palette_image = Image.new("P", (40, 40), 1)
    palette_image.putpalette([255, 255, 255, 200, 10, 10] + [0] * 762)
    data = encode(palette_image, "PNG", transparency=1)
    result = decode_upload(data, DecodeLimits(max_pixels=10_000, min_side=8)).image
    assert result.mode == "RGB"
    assert np.asarray(result).max() == 0  # fully transparent red -> black background


def test_rgba_png_is_composited_over_black():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :20, 3] = 255  # left half opaque, right half transparent
    result = decode_upload(encode(Image.fromarray(rgba, "RGBA"), "PNG"), LIMITS).image
    pixels = np.asarray(result)
    assert result.mode == "RGB"
    assert (pixels[:, :20, 0] == 200).all() and (pixels[:, 20:] == 0).all()


def test_grey_with_alpha_png_stays_grey():
    la = Image.merge("LA", [Image.new("L", (40, 40), 180), Image.new("L", (40, 40), 128)])
    result = decode_upload(encode(la, "PNG"), LIMITS).image
    assert result.mode == "L"
    assert abs(int(np.asarray(result)[0, 0]) - 90) <= 1


def test_one_bit_png_becomes_grey():
    image = Image.fromarray(mri_like(64) > 60)
    assert decode_upload(encode(image, "PNG"), LIMITS).image.mode == "L"


@pytest.mark.parametrize(("orientation", "expected_size"), [(1, (80, 40)), (6, (40, 80))])
def test_exif_orientation_is_applied(orientation, expected_size):
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :10] = 255  # a white band on the left edge
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())
    result = decode_upload(data, LIMITS).image
    assert result.size == expected_size
    grey = np.asarray(result.convert("L"))
    if orientation == 6:  # rotated 90° clockwise for display: the left band is now on top
        assert grey[:5].mean() > 200 and grey[-5:].mean() < 50
    else:
        assert grey[:, :5].mean() > 200


@pytest.mark.parametrize(
    "data",
    [jpeg_bytes(96)[:600], png_bytes(96)[:300], png_bytes(96)[:-40]],
    ids=["jpeg-truncated", "png-truncated-early", "png-missing-end"],
)
def test_truncated_images_are_corrupt_not_errors(data):
    with pytest.raises(BadUpload) as caught:
        decode_upload(data, LIMITS)
    assert caught.value.code is ErrorCode.CORRUPT_IMAGE
    assert "truncated or damaged" in caught.value.message


def test_header_only_png_is_corrupt():
    data = png_bytes(96)
    with pytest.raises(BadUpload) as caught:
        decode_upload(data[:8] + b"garbage" * 10, LIMITS)
    assert caught.value.code is ErrorCode.CORRUPT_IMAGE


def test_decompression_bomb_is_refused_from_its_header():
    bomb = png_bomb(10_000)
    assert len(bomb) < 100_000  # a small file...
    with pytest.raises(BadUpload) as caught:
        decode_upload(bomb, LIMITS)  # ...that would be 100 million pixels
    assert caught.value.code is ErrorCode.TOO_MANY_PIXELS
    assert "100,000,000" in caught.value.message
    assert "4,000,000" in caught.value.message


def test_bomb_beyond_pillows_own_limit_is_still_our_error():
    with pytest.raises(BadUpload) as caught:
        decode_upload(png_bomb(20_000), LIMITS)
    assert caught.value.code is ErrorCode.TOO_MANY_PIXELS
    assert "4,000,000" in caught.value.message


@pytest.mark.parametrize("size", [(16, 200), (200, 31)])
def test_too_small_images_are_refused(size):
    data = encode(Image.new("L", size, 100), "PNG")
    with pytest.raises(BadUpload) as caught:
        decode_upload(data, LIMITS)
    assert caught.value.code is ErrorCode.IMAGE_TOO_SMALL
    assert "at least 32 pixels" in caught.value.message


def test_text_named_like_an_image_is_unsupported():
    with pytest.raises(BadUpload) as caught:
        decode_upload(b"just some notes about the patient\n", LIMITS)
    assert caught.value.code is ErrorCode.UNSUPPORTED_FORMAT
    assert caught.value.status == 415


def test_default_limit_refuses_the_small_sixteen_bit_bomb_but_fits_real_slices():
    settings = GatewaySettings()
    limits = DecodeLimits(settings.max_image_pixels, settings.min_image_side)
    bomb = png_header_bomb(6300, 6300)  # 77 KB on disk, 40 Mpx of 16-bit pixels
    assert len(bomb) < 100_000
    with pytest.raises(BadUpload) as caught:
        decode_upload(bomb, limits)
    assert caught.value.code is ErrorCode.TOO_MANY_PIXELS
    # The largest MRI slices (2048 px a side) and a generous 4000 x 4000 still pass.
    assert decode_upload(png_header_bomb(4000, 4000), limits).size == (4000, 4000)


def test_decoding_a_large_sixteen_bit_png_needs_little_more_than_its_eight_bit_result():
    side = 2000
    values = (np.arange(side * side, dtype=np.uint32) % 4096).astype(np.uint16) * 16
    data = encode(Image.fromarray(values.reshape(side, side)), "PNG")
    tracemalloc.start()
    try:
        image = decode_upload(data, DecodeLimits(max_pixels=side * side, min_side=32)).image
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert image.mode == "L" and image.size == (side, side)
    # Python-side allocations (NumPy): the 1-byte result plus a few MB of bands. Stretching
    # the whole image in float64 took over 30 bytes per pixel.
    assert peak < side * side * 2, f"{peak / side / side:.1f} bytes per pixel"
