"""Fixtures for the data tests: tiny image data sets in the Kaggle layout, built with PIL.

Helpers are handed out as fixtures (not imported) because this folder is not on the test path.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from brainscan_manifest.decode import upright_eight_bit
from PIL import Image

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


def _write_image(
    path: Path, seed: int, size: tuple[int, int] = (24, 20), fmt: str = "JPEG"
) -> Path:
    """A small random greyscale image; distinct seeds give distinct bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0]), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode="L").save(path, format=fmt)
    return path


def _build_dataset(root: Path, train: int = 4, test: int = 2, classes=tuple(CLASSES)) -> Path:
    """root/{Training,Testing}/<class>/img_<i>.jpg with every image unique."""
    seed = 0
    for split, count in (("Training", train), ("Testing", test)):
        for class_name in classes:
            for index in range(count):
                seed += 1
                _write_image(root / split / class_name / f"img_{index}.jpg", seed)
    return root


@pytest.fixture
def classes() -> list[str]:
    return list(CLASSES)


@pytest.fixture
def write_image() -> Callable[..., Path]:
    """write_image(path, seed, size=(w, h), fmt="JPEG") -> path."""
    return _write_image


@pytest.fixture
def build_dataset() -> Callable[..., Path]:
    """build_dataset(root, train=4, test=2, classes=...) -> root."""
    return _build_dataset


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A valid tiny data set: 4 training and 2 testing images per class."""
    return _build_dataset(tmp_path / "raw")


# --- A download as the real archives come: one wrapping folder, lower-case split names, SARTAJ
# class names, JPEG and PNG of mixed sizes and modes, and duplicates of every kind (the expected
# outcome is spelt out in test_real_archive.py).
SARTAJ = {
    "glioma": "glioma_tumor",
    "meningioma": "meningioma_tumor",
    "notumor": "no_tumor",
    "pituitary": "pituitary_tumor",
}
# name -> (class, size, mode, format): distinct synthetic slices.
ARCHIVE_IMAGES = {
    "training/glioma_tumor/g0.jpg": ("glioma", 128, "RGB", "JPEG"),
    "training/glioma_tumor/g1.png": ("glioma", 112, "L", "PNG"),
    "training/glioma_tumor/g2.jpg": ("glioma", 128, "RGB", "JPEG"),
    "training/meningioma_tumor/m0.jpg": ("meningioma", 96, "L", "JPEG"),
    "training/meningioma_tumor/m1.png": ("meningioma", 128, "P", "PNG"),
    "training/meningioma_tumor/m2.jpg": ("meningioma", 144, "RGB", "JPEG"),
    "training/no_tumor/n0.jpg": ("notumor", 128, "CMYK", "JPEG"),
    "training/no_tumor/n1.jpg": ("notumor", 96, "L", "JPEG"),
    "training/no_tumor/n2.png": ("notumor", 128, "RGBA", "PNG"),
    "training/pituitary_tumor/p0.jpg": ("pituitary", 128, "RGB", "JPEG"),
    "training/pituitary_tumor/p1.jpg": ("pituitary", 112, "L", "JPEG"),
    "training/pituitary_tumor/p2.png": ("pituitary", 128, "I;16", "PNG"),
    "testing/glioma_tumor/tg0.jpg": ("glioma", 128, "RGB", "JPEG"),
    "testing/glioma_tumor/tg1.jpg": ("glioma", 96, "L", "JPEG"),
    "testing/meningioma_tumor/tm0.jpg": ("meningioma", 128, "RGB", "JPEG"),
    "testing/meningioma_tumor/tm1.jpg": ("meningioma", 128, "L", "JPEG"),
    "testing/no_tumor/tn0.jpg": ("notumor", 128, "RGB", "JPEG"),
    "testing/no_tumor/tn1.png": ("notumor", 112, "P", "PNG"),
    "testing/pituitary_tumor/tp0.jpg": ("pituitary", 128, "L", "JPEG"),
    "testing/pituitary_tumor/tp1.jpg": ("pituitary", 96, "RGB", "JPEG"),
}
# copy -> (original, how): "exact" copies the bytes, "q70" re-encodes as JPEG quality 70,
# "small" resizes to 0.8x and re-encodes at quality 70.
ARCHIVE_COPIES = {
    "training/glioma_tumor/g0_copy.jpg": ("training/glioma_tumor/g0.jpg", "exact"),
    "training/glioma_tumor/g1_small.jpg": ("training/glioma_tumor/g1.png", "small"),
    "testing/meningioma_tumor/tm0_dup.jpg": ("testing/meningioma_tumor/tm0.jpg", "small"),
    "training/no_tumor/n_leak.jpg": ("testing/no_tumor/tn0.jpg", "q70"),
    "training/pituitary_tumor/p_leak.jpg": ("testing/pituitary_tumor/tp0.jpg", "exact"),
    # the same image under two labels
    "training/meningioma_tumor/m_from_glioma.jpg": ("training/glioma_tumor/g2.jpg", "exact"),
    "training/glioma_tumor/g_from_test_men.jpg": ("testing/meningioma_tumor/tm1.jpg", "q70"),
}


def synthetic_slice(class_name: str, seed: int, size: int) -> Image.Image:
    """A slice from the repository's generator (the same brain, another view per seed)."""
    from brainscan_synthetic_mri.synthetic import render_example

    return Image.fromarray(render_example(class_name, np.random.default_rng(seed), size).image)


def _in_mode(grey: Image.Image, mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    if mode == "RGBA":
        rgba = grey.convert("RGBA")
        rgba.putalpha(255)
        return rgba
    return grey.convert(mode)


def near_copy(image: Image.Image, how: str) -> Image.Image:
    """The image as a re-encoded ("q70") or resized and re-encoded ("small") JPEG."""
    import io

    image = image.convert("RGB") if image.mode not in ("L", "RGB") else image
    if how == "small":
        image = image.resize((round(image.width * 0.8), round(image.height * 0.8)))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=70)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _build_archive(root: Path) -> Path:
    base = root / "archive"
    for index, (name, (class_name, size, mode, fmt)) in enumerate(ARCHIVE_IMAGES.items()):
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _in_mode(synthetic_slice(class_name, 100 + index, size), mode).save(path, format=fmt)
    for name, (original, how) in ARCHIVE_COPIES.items():
        if how == "exact":
            (base / name).write_bytes((base / original).read_bytes())
        else:
            with Image.open(base / original) as image:
                image.load()
                near_copy(upright_eight_bit(image), how).save(base / name, format="JPEG")
    (root / "__MACOSX" / "archive").mkdir(parents=True)  # macOS' zip side folder: ignored
    (root / "__MACOSX" / "archive" / "._g0.jpg").write_bytes(b"\x00\x05")
    return root


@pytest.fixture(scope="session")
def _archive_once(tmp_path_factory) -> Path:
    return _build_archive(tmp_path_factory.mktemp("download"))


@pytest.fixture
def real_archive(_archive_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of the realistic download (the folder holding archive/)."""
    return Path(shutil.copytree(_archive_once, tmp_path / "download"))


@pytest.fixture
def slices() -> tuple[Callable[..., Image.Image], Callable[..., Image.Image]]:
    """(synthetic_slice(class_name, seed, size), near_copy(image, "q70" | "small"))."""
    return synthetic_slice, near_copy
