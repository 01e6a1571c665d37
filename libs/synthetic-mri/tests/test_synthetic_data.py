"""The synthetic data set: Kaggle layout, determinism, disjoint splits, images that vary."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from brainscan_synthetic_mri.synthetic import (
    CLASSES,
    generate_dataset,
    image_rng,
    main,
    render_example,
)
from PIL import Image

SIZE = 64


def digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.jpg"))
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "raw"
    counts = generate_dataset(root, train_per_class=3, test_per_class=2, seed=7, image_size=SIZE,
                              workers=1)  # fmt: skip
    assert counts == {"Training": dict.fromkeys(CLASSES, 3), "Testing": dict.fromkeys(CLASSES, 2)}
    return root


def test_layout_is_kaggle_with_exact_counts(generated: Path):
    assert sorted(p.name for p in generated.iterdir()) == ["Testing", "Training"]
    for split, count, prefix in (("Training", 3, "Tr"), ("Testing", 2, "Te")):
        assert sorted(p.name for p in (generated / split).iterdir()) == sorted(CLASSES)
        for class_name in CLASSES:
            names = sorted(p.name for p in (generated / split / class_name).iterdir())
            abbreviation = class_name[:2]
            assert names == [f"{prefix}-{abbreviation}_{i:04d}.jpg" for i in range(count)]


def test_images_are_greyscale_jpegs_of_about_the_requested_size(generated: Path):
    for path in generated.rglob("*.jpg"):
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode in ("L", "RGB")
            assert max(image.size) == SIZE and min(image.size) >= 0.85 * SIZE
            pixels = np.asarray(image.convert("RGB"), dtype=int)
            # grey: the channels agree up to JPEG's chroma rounding
            assert np.abs(pixels[..., 0] - pixels[..., 2]).max() <= 8


def test_same_seed_gives_identical_bytes_and_another_seed_differs(generated: Path, tmp_path):
    generate_dataset(tmp_path / "again", 3, 2, seed=7, image_size=SIZE, workers=1)
    generate_dataset(tmp_path / "other", 3, 2, seed=8, image_size=SIZE, workers=1)
    assert digests(tmp_path / "again") == digests(generated)
    other = digests(tmp_path / "other")
    assert other.keys() == digests(generated).keys()
    assert not set(other.values()) & set(digests(generated).values())


def test_worker_processes_write_the_same_bytes(generated: Path, tmp_path: Path):
    generate_dataset(tmp_path / "parallel", 3, 2, seed=7, image_size=SIZE, workers=2)
    assert digests(tmp_path / "parallel") == digests(generated)


def test_training_and_testing_never_share_an_image_seed():
    for class_name in CLASSES:
        train = render_example(class_name, image_rng(7, "Training", class_name, 0), SIZE)
        test = render_example(class_name, image_rng(7, "Testing", class_name, 0), SIZE)
        assert not np.array_equal(train.image, test.image)
    keys = {
        (split, c, i): image_rng(7, split, c, i).integers(2**63)
        for split in ("Training", "Testing")
        for c in CLASSES
        for i in range(50)
    }
    assert len(set(keys.values())) == len(keys)


def test_regenerating_a_smaller_set_removes_the_stale_images(tmp_path: Path):
    generate_dataset(tmp_path / "raw", 3, 2, seed=1, image_size=SIZE, workers=1)
    generate_dataset(tmp_path / "raw", 1, 1, seed=1, image_size=SIZE, workers=1)
    assert len(list((tmp_path / "raw").rglob("*.jpg"))) == 8


def test_images_vary_and_are_not_flat():
    images = [render_example(c, np.random.default_rng(i), SIZE).image for c in CLASSES
              for i in range(4)]  # fmt: skip
    for image in images:
        assert image.dtype == np.uint8 and image.std() > 20
        assert (image < 30).mean() > 0.05  # air around the head
    flat = [image[:48, :48].astype(float).ravel() for image in images]
    for i in range(len(flat)):
        for j in range(i + 1, len(flat)):
            assert np.abs(flat[i] - flat[j]).mean() > 3


def test_render_example_is_deterministic_for_a_seed():
    first = render_example("glioma", np.random.default_rng(11), SIZE)
    again = render_example("glioma", np.random.default_rng(11), SIZE)
    assert np.array_equal(first.image, again.image)
    assert np.array_equal(first.lesion_mask, again.lesion_mask)


def test_bad_arguments_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown class 'astrocytoma'"):
        render_example("astrocytoma", np.random.default_rng(0), SIZE)
    with pytest.raises(ValueError, match="at least 1"):
        generate_dataset(tmp_path, 0, 1, seed=1)
    with pytest.raises(ValueError, match="image_size"):
        generate_dataset(tmp_path, 1, 1, seed=1, image_size=8)


def test_cli_generates_the_requested_counts(tmp_path: Path, caplog):
    caplog.set_level("INFO")
    argv = ["--out", str(tmp_path / "cli"), "--train-per-class", "1", "--test-per-class", "1",
            "--seed", "3", "--image-size", "48", "--workers", "1"]  # fmt: skip
    assert main(argv) == 0
    assert len(list((tmp_path / "cli").rglob("*.jpg"))) == 8
    assert "images/s" in caplog.text
