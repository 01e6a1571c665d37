"""Model packages for model-sync tests: training's small quadrant classifiers, good and broken.

The good ones are real ONNX classifiers with manifests (``training_models.write_package``); the
broken ones are each wrong in exactly one way that a check must catch.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_manifest.verify import sha256_file
from training_models import CLASSES, CONFUSED, PERFECT, quadrant_model, write_package

__all__ = [
    "CLASSES",
    "CONFUSED",
    "PERFECT",
    "good_package",
    "truncated_package",
    "wrong_class_count_package",
]


def good_package(directory: Path, name: str, mapping=PERFECT) -> Path:
    """A valid package whose manifest names the registered model ``name``."""
    write_package(directory, mapping, name=name)
    return directory


def truncated_package(directory: Path, name: str) -> Path:
    """An ONNX file cut in half, with a manifest whose sha256 is that of the cut file: only the
    ONNX checker can tell."""
    good_package(directory, name)
    model = directory / MODEL_FILE
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    _rehash(directory)
    return directory


def wrong_class_count_package(directory: Path, name: str) -> Path:
    """A model with 3 probability outputs under a manifest that lists 4 classes."""
    good_package(directory, name)
    onnx.save(quadrant_model(PERFECT, num_classes=3), str(directory / MODEL_FILE))
    _rehash(directory)
    return directory


def _rehash(directory: Path) -> None:
    manifest = Manifest.load(directory / MANIFEST_FILE)
    manifest = manifest.model_copy(update={"onnx_sha256": sha256_file(directory / MODEL_FILE)})
    manifest.save(directory / MANIFEST_FILE)
