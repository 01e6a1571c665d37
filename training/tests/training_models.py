"""A test split of quadrant images (brainscan_testsupport.onnx_models.quadrant_image) laid out as
the prepare stage lays out its data, for the quadrant classifiers to be scored on."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from brainscan_testsupport.onnx_models import CLASSES, quadrant_image
from PIL import Image


def write_test_split(root: Path, per_class: int = 6, seed: int = 0) -> tuple[Path, Path]:
    """PNG files under root/raw and root/prepared/test.csv, as the prepare stage lays them out."""
    rng = np.random.default_rng(seed)
    raw, prepared = root / "raw", root / "prepared"
    prepared.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, name in enumerate(CLASSES):
        folder = raw / "Testing" / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            path = folder / f"{index}.png"
            Image.fromarray(quadrant_image(label, rng)).save(path)
            rows.append((path.relative_to(raw).as_posix(), name))
    with open(prepared / "test.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return prepared / "test.csv", raw
