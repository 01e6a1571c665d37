"""The model input made from a decoded image: colour mode, size and filter as the manifest says."""

from __future__ import annotations

import numpy as np
import pytest
from brainscan_manifest import InputSpec
from brainscan_manifest.preprocess import resize_for_model, to_input_array
from PIL import Image

FILTERS = ["nearest", "bilinear", "bicubic", "lanczos"]


def textured_grey(height: int, width: int, seed: int) -> Image.Image:
    """Noise on a ramp: edges and gradients, so any difference between two resizes shows."""
    rng = np.random.default_rng(seed)
    ramp = np.add.outer(np.arange(height) * 3, np.arange(width) * 5) % 256
    noise = rng.integers(-40, 41, (height, width))
    return Image.fromarray(np.clip(ramp + noise, 0, 255).astype(np.uint8), mode="L")


@pytest.mark.parametrize("resize_filter", FILTERS)
@pytest.mark.parametrize(
    ("source", "target"),
    [((512, 512), (128, 128)), ((300, 257), (224, 224)), ((37, 90), (128, 96))],
)
def test_grey_image_for_an_rgb_model_equals_converting_before_resizing(
    resize_filter, source, target
):
    """Grey input is resized before it is made RGB (a third of the work): same pixels exactly."""
    image = textured_grey(source[1], source[0], seed=source[0])
    spec = InputSpec(name="x", width=target[0], height=target[1], resize_filter=resize_filter)
    filter_ = getattr(Image.Resampling, resize_filter.upper())
    expected = image.convert("RGB").resize(target, filter_)

    result = resize_for_model(image, spec)

    assert result.mode == "RGB"
    assert result.size == target
    np.testing.assert_array_equal(np.asarray(result), np.asarray(expected))


def test_grey_image_already_at_the_model_size_is_only_converted():
    image = textured_grey(16, 16, seed=1)
    result = to_input_array(image, InputSpec(name="x", width=16, height=16))
    assert result.shape == (16, 16, 3)
    np.testing.assert_array_equal(result, np.asarray(image.convert("RGB")))


def test_rgb_image_for_a_grey_model_is_converted_before_resizing():
    """RGB -> grey rounds per pixel, so here the order is the one training always used."""
    rng = np.random.default_rng(2)
    image = Image.fromarray(rng.integers(0, 256, (64, 48, 3), dtype=np.uint8), mode="RGB")
    spec = InputSpec(name="x", width=16, height=20, channels=1, color="L")
    expected = image.convert("L").resize((16, 20), Image.Resampling.BILINEAR)
    result = to_input_array(image, spec)
    assert result.shape == (20, 16, 1)
    np.testing.assert_array_equal(result[:, :, 0], np.asarray(expected))
