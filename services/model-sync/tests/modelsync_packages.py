"""Model packages for model-sync tests: brainscan_testsupport's quadrant classifiers, good and
broken.

The good ones are real ONNX classifiers with manifests (``packages.quadrant_package``); the
broken ones are each wrong in exactly one way that a check must catch.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from brainscan_manifest import MODEL_FILE
from brainscan_testsupport.onnx_models import CLASSES, CONFUSED, PERFECT, quadrant_model
from brainscan_testsupport.packages import quadrant_package, rehash, truncate_model

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
    quadrant_package(directory, mapping, name=name)
    return directory


def truncated_package(directory: Path, name: str) -> Path:
    """An ONNX file cut in half, with a manifest whose sha256 is that of the cut file: only the
    ONNX checker can tell."""
    return truncate_model(good_package(directory, name))


def wrong_class_count_package(directory: Path, name: str) -> Path:
    """A model with 3 probability outputs under a manifest that lists 4 classes."""
    good_package(directory, name)
    onnx.save(quadrant_model(PERFECT, num_classes=3), str(directory / MODEL_FILE))
    rehash(directory)
    return directory
