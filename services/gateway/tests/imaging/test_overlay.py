import base64
import io

import numpy as np
from brainscan_gateway.imaging.overlay import colour_map, display_copy, overlay, png_base64
from PIL import Image


def test_display_copy_keeps_aspect_and_limits_size():
    copy = display_copy(Image.new("L", (1000, 500)), 256)
    assert copy.size == (256, 128) and copy.mode == "RGB"
    assert display_copy(Image.new("RGB", (100, 50)), 256).size == (100, 50)


def test_colour_map_runs_cold_to_hot():
    colours = colour_map(np.array([[0.0, 1.0]]))
    cold, hot = colours[0, 0].astype(int), colours[0, 1].astype(int)
    assert cold[2] > cold[0]  # blue-ish at 0
    assert hot[0] > hot[2]  # red-ish at 1
    assert colour_map(np.array([[np.nan]])).shape == (1, 1, 3)


def test_overlay_colours_where_the_map_is_strong_only():
    image = Image.new("L", (200, 100), 100)
    cam = np.zeros((4, 4), np.float32)
    cam[:, 3] = 1.0  # evidence in the right-hand column only
    result = np.asarray(overlay(image, cam, 512)).astype(int)
    assert result.shape == (100, 200, 3)
    assert (result[:, :40] == 100).all()  # left: untouched grey
    right = result[:, -10:]
    assert np.abs(right[..., 0] - right[..., 2]).mean() > 20  # right: coloured


def test_png_base64_round_trips():
    image = Image.new("RGB", (10, 10), (1, 2, 3))
    decoded = Image.open(io.BytesIO(base64.b64decode(png_base64(image))))
    assert decoded.format == "PNG" and decoded.getpixel((0, 0)) == (1, 2, 3)
