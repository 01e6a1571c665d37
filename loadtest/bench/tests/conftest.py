"""Fixtures: the bench's modules importable (they are scripts in one folder) and a tiny package."""

from __future__ import annotations

import importlib
from pathlib import Path

import onnx
import pytest
from brainscan_manifest import InputSpec, Manifest, OutputSpec
from brainscan_manifest.verify import sha256_file
from manifest_models import softmax_model

BENCH = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """``bench("run")`` imports loadtest/bench/run.py the way its scripts import each other."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module


@pytest.fixture
def tiny_package(tmp_path) -> Path:
    """A real 4-class ONNX classifier on 8x8 UINT8 images with its manifest (not versioned)."""
    model = softmax_model(scale=0.01)
    package = tmp_path / "tiny"
    package.mkdir()
    onnx.save(model, str(package / "model.onnx"))
    Manifest(
        name="tiny",
        classes=["glioma", "meningioma", "notumor", "pituitary"],
        input=InputSpec(name="image", height=8, width=8),
        outputs=OutputSpec(probabilities="probabilities"),
        onnx_sha256=sha256_file(package / "model.onnx"),
    ).save(package / "manifest.json")
    return package
