"""Fixtures: the bench's modules importable (they are scripts in one folder) and a tiny package."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from brainscan_manifest import InputSpec, Manifest, OutputSpec
from brainscan_manifest.verify import sha256_file
from onnx import TensorProto, helper, numpy_helper

BENCH = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """``bench("run")`` imports loadtest/bench/run.py the way its scripts import each other."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module


@pytest.fixture
def tiny_package(tmp_path) -> Path:
    """A real 4-class ONNX classifier on 8x8 UINT8 images with its manifest (not versioned)."""
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
        helper.make_node("Unsqueeze", ["m", "one"], ["m2"]),
        helper.make_node("Mul", ["m2", "ramp"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    initializers = [
        numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.linspace(0, 0.01, 4, dtype=np.float32), "ramp"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["n", 8, 8, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", 4])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
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
