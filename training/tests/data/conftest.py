"""Fixtures for the data tests: tiny image data sets in the Kaggle layout, built with PIL.

Helpers are handed out as fixtures (not imported) because this folder is not on the test path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
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
