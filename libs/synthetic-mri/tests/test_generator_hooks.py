"""The generator's optional hooks for the OOD corpus: they work, and at their defaults the training
data is unchanged to the pixel (hashes recorded with the code before the hooks existed)."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
from brainscan_synthetic_mri.anatomy import cut_slice, load_template
from brainscan_synthetic_mri.contrast import sample_contrast
from brainscan_synthetic_mri.synthetic import CLASSES, RenderedImage, image_rng, render_example

# sha256[:16] of image, masks, plane/slice/contrast and the rng's state after rendering (which
# fixes the writer's later draws of mode and JPEG quality), computed at commit 0d0f3dd, before
# the contrast/slice_maps/head_fill hooks. They pin numpy and PIL arithmetic too: if an upgrade
# moves them, recompute them at that commit with the new packages before suspecting the hooks.
WITHOUT_MASKS_64 = {
    ("Training", "glioma", 0): "7867d8084b67d4d0",
    ("Training", "meningioma", 0): "65beb8a8a94375ac",
    ("Training", "notumor", 0): "6b0bd7ac682d44a3",
    ("Training", "pituitary", 0): "24db32870ef1ce4a",
    ("Testing", "glioma", 3): "9b99c40b64e8a242",
    ("Testing", "meningioma", 3): "992176fdc408d4bf",
    ("Testing", "notumor", 3): "91d48684d22d89ee",
    ("Testing", "pituitary", 3): "0a880c8d6bc725a0",
}
WITH_MASKS_256 = {
    "glioma": "080bd64d39d3b575",
    "meningioma": "a3044fc24f00bcd3",
    "notumor": "cac0dfbd04038ca9",
    "pituitary": "1a984f9d40496c7a",
}
UNAUGMENTED_MENINGIOMA_96 = "044d5772563f2bc4"


def digest(rendered: RenderedImage, rng: np.random.Generator) -> str:
    h = hashlib.sha256()
    for array in (rendered.image, rendered.lesion_mask, rendered.brain_mask):
        h.update(np.ascontiguousarray(array).tobytes())
        h.update(str(array.shape).encode())
    h.update(f"{rendered.plane}|{rendered.slice_mm}|{rendered.contrast}".encode())
    h.update(str(rng.bit_generator.state).encode())
    return h.hexdigest()[:16]


def test_default_rendering_is_bit_identical_to_before_the_hooks():
    seen = {}
    for split, class_name, index in WITHOUT_MASKS_64:
        rng = image_rng(7, split, class_name, index)  # the training data set's own streams
        rendered = render_example(class_name, rng, 64, with_masks=False)
        seen[split, class_name, index] = digest(rendered, rng)
    assert seen == WITHOUT_MASKS_64
    masked = {}
    for class_name in CLASSES:
        rng = image_rng(7, "Training", class_name, 1)
        masked[class_name] = digest(render_example(class_name, rng, 256), rng)
    assert masked == WITH_MASKS_256
    rng = np.random.default_rng([5, 0])
    rendered = render_example("meningioma", rng, 96, augment=False)
    assert digest(rendered, rng) == UNAUGMENTED_MENINGIOMA_96


def test_contrast_hook_replaces_the_drawn_contrast():
    custom = dataclasses.replace(sample_contrast(np.random.default_rng(1)), name="custom")
    rendered = render_example("glioma", np.random.default_rng(2), 64, contrast=custom)
    assert rendered.contrast == "custom"


def test_slice_maps_hook_renders_that_slice_and_only_without_a_lesion():
    maps = cut_slice(load_template(), "sagittal", 60)
    rendered = render_example("notumor", np.random.default_rng(3), 64, slice_maps=maps)
    assert (rendered.plane, rendered.slice_mm) == ("sagittal", maps.mni_mm)
    with pytest.raises(ValueError, match="notumor"):
        render_example("glioma", np.random.default_rng(3), 64, slice_maps=maps)


def test_head_fill_sets_how_much_of_the_frame_the_head_spans():
    areas = [
        render_example("notumor", np.random.default_rng(4), 128, head_fill=fill).brain_mask.sum()
        for fill in (0.3, 0.9)
    ]
    assert areas[0] < 0.2 * areas[1]  # area goes with the square of the span: (1/3)^2
