"""Load a prepared split (CSV of path,label) into memory as model-ready uint8 arrays.

Each file is opened with Pillow, normalised by brainscan_manifest.decode (EXIF orientation,
16-bit stretch, alpha, palette) and preprocessed by brainscan_manifest.preprocess: the same two
functions the gateway applies to an upload, so a model sees the same pixels in both.
"""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from brainscan_manifest import InputSpec
from brainscan_manifest.decode import upright_eight_bit
from brainscan_manifest.preprocess import to_input_array
from PIL import Image


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # [N, H, W, C] uint8
    labels: np.ndarray  # [N] int class indices
    paths: list[str]

    def __len__(self) -> int:
        return len(self.labels)


def read_split_csv(csv_path: Path) -> list[tuple[str, str]]:
    with open(csv_path, newline="") as handle:
        return [(row["path"], row["label"]) for row in csv.DictReader(handle)]


def load_image(path: Path, spec: InputSpec) -> np.ndarray:
    """One image file -> one model input sample, decoded as the gateway decodes an upload."""
    with Image.open(path) as image:
        image.load()
        return to_input_array(upright_eight_bit(image), spec)


def load_split(csv_path: Path, raw_dir: Path, classes: list[str], spec: InputSpec) -> Split:
    rows = read_split_csv(csv_path)
    unknown = sorted({label for _, label in rows} - set(classes))
    if unknown:
        raise ValueError(f"{csv_path}: labels {unknown} are not among the classes {classes}")

    files = [Path(raw_dir) / path for path, _ in rows]
    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(load_image, files, [spec] * len(files)))
    index = {name: i for i, name in enumerate(classes)}
    return Split(
        images=np.stack(images) if images else np.zeros((0, *spec.shape()[1:]), np.uint8),
        labels=np.array([index[label] for _, label in rows], dtype=np.int64),
        paths=[path for path, _ in rows],
    )


def image_sizes(raw_dir: Path, paths: list[str]) -> list[tuple[int, int]]:
    """(width, height) of each file, from its header alone."""
    sizes = []
    for path in paths:
        with Image.open(Path(raw_dir) / path) as image:
            sizes.append(image.size)
    return sizes
