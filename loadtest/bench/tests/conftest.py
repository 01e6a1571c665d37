"""Fixtures: the bench's modules importable (they are scripts in one folder) and tiny packages."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from brainscan_manifest import InputSpec, Manifest, OutputSpec
from brainscan_testsupport.guard import with_guard
from brainscan_testsupport.onnx_models import CLASSES, brightness_model
from brainscan_testsupport.packages import save_package

BENCH = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """``bench("run")`` imports loadtest/bench/run.py the way its scripts import each other."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module


def write_tiny(directory: Path, *, guard: bool = False) -> Path:
    """A real 4-class ONNX classifier on 8x8 UINT8 images with its manifest (not versioned);
    with ``guard``, a real out-of-distribution guard (pixels and confidence) fitted on noise."""
    model = brightness_model(scale=0.01)
    manifest = Manifest(
        name="tiny",
        classes=CLASSES,
        input=InputSpec(name="image", height=8, width=8),
        outputs=OutputSpec(probabilities="probabilities"),
        onnx_sha256="0" * 64,
    )
    if guard:
        images = np.random.default_rng(3).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
        model, manifest = with_guard(model, manifest, images)
    return save_package(directory, model, manifest)


@pytest.fixture
def tiny_package(tmp_path) -> Path:
    return write_tiny(tmp_path / "tiny")


@pytest.fixture
def tiny_guarded_package(tmp_path) -> Path:
    """The tiny classifier with a guard: what the pipeline's guard stage makes of an export."""
    return write_tiny(tmp_path / "tiny-guarded", guard=True)
