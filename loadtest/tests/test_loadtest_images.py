"""The uploads the load test sends: decodable, of the sizes and formats it claims."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from loadtest_images import (
    DEFAULT_VARIANTS,
    FAKE_PATIENT_NAME,
    make_bad_uploads,
    make_uploads,
    phantom_slice,
)
from PIL import Image


@pytest.fixture(scope="module")
def uploads():
    return make_uploads(per_variant=1)


def test_one_upload_per_variant_with_its_format_and_size(uploads):
    assert [(u.image_format, u.side) for u in uploads] == list(DEFAULT_VARIANTS)
    for upload in uploads:
        if upload.image_format == "dicom":
            ds = pydicom.dcmread(io.BytesIO(upload.data))
            # The generator jitters the aspect ratio; the longer side is the one asked for.
            assert max(ds.pixel_array.shape) == upload.side
            assert ds.BitsStored == 12 and str(ds.PatientName) == FAKE_PATIENT_NAME
        else:
            image = Image.open(io.BytesIO(upload.data))
            assert image.format == upload.image_format.upper()
            assert max(image.size) == upload.side
            assert upload.content_type == f"image/{upload.image_format}"


def test_slices_look_like_heads_not_noise(uploads):
    jpeg = next(u for u in uploads if u.image_format == "jpeg")
    pixels = np.asarray(Image.open(io.BytesIO(jpeg.data)).convert("L"), dtype=float)
    side = pixels.shape[0]
    centre = pixels[side // 3 : 2 * side // 3, side // 3 : 2 * side // 3]
    assert centre.mean() > pixels[:8, :8].mean() + 20  # brain brighter than the corner


def test_the_same_seed_gives_the_same_uploads():
    first = make_uploads(per_variant=1, variants=[("png", 256)], seed=3)
    again = make_uploads(per_variant=1, variants=[("png", 256)], seed=3)
    assert first == again


def test_phantom_has_a_lesion_only_where_the_class_has_one():
    rng = np.random.default_rng(0)
    glioma = phantom_slice("glioma", 128, rng).astype(int)
    healthy = phantom_slice("notumor", 128, np.random.default_rng(0)).astype(int)
    assert (glioma - healthy).max() > 60
    assert glioma.shape == (128, 128)


def test_each_bad_upload_names_the_refusal_it_gets():
    bad = {b.code: b for b in make_bad_uploads()}
    assert set(bad) == {
        "unsupported_format",
        "corrupt_image",
        "image_too_small",
        "empty_file",
        "dicom_no_pixel_data",
    }
    assert bad["unsupported_format"].status == 415
    assert all(b.status == 422 for code, b in bad.items() if code != "unsupported_format")
