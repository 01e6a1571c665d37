"""The perceptual hash and its threshold: copies match, other slices do not (docs/data.md has
the full measurement this miniature repeats)."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from brainscan_training.data.duplicates import (
    DEFAULT_MAX_DISTANCE,
    hamming,
    near_pairs,
    perceptual_hash,
)
from brainscan_training.params import DataParams
from PIL import Image
from pydantic import ValidationError


def hash_of_file(image: Image.Image, fmt: str = "JPEG") -> bytes:
    """Through a file, and decoded as the checks decode it."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    with Image.open(io.BytesIO(buffer.getvalue())) as opened:
        opened.draft(opened.mode, (128, 128))
        opened.load()
        return perceptual_hash(opened)


def test_near_pairs_equal_the_brute_force_answer_across_blocks():
    rng = np.random.default_rng(0)
    hashes = [rng.bytes(32) for _ in range(150)]  # more than one block of 64 rows
    hashes[140] = hashes[3]
    flipped = bytearray(hashes[10])
    flipped[0] ^= 0b111
    hashes[77] = bytes(flipped)
    expected = [
        (i, j) for i, j in itertools.combinations(range(150), 2) if hamming(hashes[i], hashes[j]) <= 3
    ]
    assert sorted(near_pairs(hashes, 3)) == expected == [(3, 140), (10, 77)]
    assert near_pairs(hashes[:1], 3) == []


@pytest.mark.parametrize("size", [128, 256, 512])
def test_threshold_matches_copies_and_separates_other_slices(size: int, slices):
    synthetic_slice, near_copy = slices
    originals = [
        synthetic_slice(name, seed, size)
        for seed, name in enumerate(["glioma", "meningioma", "notumor", "pituitary"] * 3)
    ]
    hashes = [hash_of_file(image) for image in originals]
    for image, original in zip(originals, hashes, strict=True):
        for how in ("q70", "small"):
            assert hamming(hash_of_file(near_copy(image, how)), original) <= DEFAULT_MAX_DISTANCE
        assert hamming(hash_of_file(image.convert("CMYK")), original) <= DEFAULT_MAX_DISTANCE
        assert hamming(hash_of_file(image, "PNG"), original) <= DEFAULT_MAX_DISTANCE
    assert near_pairs(hashes, DEFAULT_MAX_DISTANCE) == []


def test_duplicates_param_is_drop_or_fail():
    assert DataParams().duplicates == "drop"
    assert DataParams().near_duplicate_distance == DEFAULT_MAX_DISTANCE
    with pytest.raises(ValidationError, match=r"duplicates\n.*Input should be 'drop' or 'fail'"):
        DataParams(duplicates="keep")
    with pytest.raises(ValidationError, match="near_duplicate_distance"):
        DataParams(near_duplicate_distance=-1)
