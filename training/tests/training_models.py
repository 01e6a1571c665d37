"""Small real ONNX image classifiers and matching test splits, built without TensorFlow.

A "quadrant" image is dark except one bright quadrant, whose index is its class. The model
averages each quadrant and maps the four means to class probabilities through a matrix: the
identity gives a perfect classifier, other matrices give worse ones, all scored for real.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnx
from brainscan_manifest import InputSpec, Manifest, OutputSpec
from brainscan_manifest.verify import sha256_file
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
SIZE = 16
PERFECT = np.eye(4, dtype=np.float32)
# Confuses pituitary with notumor: macro F1 drops to about 0.65.
CONFUSED = np.eye(4, dtype=np.float32)[:, [0, 1, 2, 2]]
CONSTANT = np.zeros((4, 4), dtype=np.float32)


def quadrant_image(label: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    image = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    half = size // 2
    row, col = divmod(label, 2)
    image[row * half : (row + 1) * half, col * half : (col + 1) * half] += 180
    return image


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


def quadrant_model(mapping: np.ndarray, size: int = SIZE, num_classes: int = 4) -> onnx.ModelProto:
    half = size // 2
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["pixels", "channel_axis"], ["grey"], keepdims=0),
        helper.make_node("Reshape", ["grey", "quadrant_shape"], ["blocks"]),
        helper.make_node("ReduceMean", ["blocks", "block_axes"], ["means"], keepdims=0),
        helper.make_node("Reshape", ["means", "flat_shape"], ["quadrants"]),
        helper.make_node("MatMul", ["quadrants", "mapping"], ["scores"]),
        helper.make_node("Mul", ["scores", "sharpness"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    initializers = [
        numpy_helper.from_array(np.array([3], np.int64), "channel_axis"),
        numpy_helper.from_array(np.array([-1, 2, half, 2, half], np.int64), "quadrant_shape"),
        numpy_helper.from_array(np.array([2, 4], np.int64), "block_axes"),
        numpy_helper.from_array(np.array([-1, 4], np.int64), "flat_shape"),
        numpy_helper.from_array(mapping[:, :num_classes].astype(np.float32), "mapping"),
        numpy_helper.from_array(np.array(0.1, np.float32), "sharpness"),
    ]
    graph = helper.make_graph(
        nodes,
        "quadrant_classifier",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", size, size, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", num_classes])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    return model


def write_package(
    directory: Path, mapping: np.ndarray = PERFECT, name: str = "quadrants", classes=None
) -> tuple[Path, Manifest]:
    """A complete model package (model.onnx + manifest.json) in directory."""
    classes = classes or CLASSES
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = directory / "model.onnx"
    onnx.save(quadrant_model(mapping, num_classes=len(classes)), str(onnx_path))
    manifest = Manifest(
        name=name,
        classes=classes,
        input=InputSpec(name="image", height=SIZE, width=SIZE, resize_filter="nearest"),
        outputs=OutputSpec(probabilities="probabilities"),
        default_threshold=0.5,
        onnx_sha256=sha256_file(onnx_path),
    )
    manifest.save(directory / "manifest.json")
    return onnx_path, manifest
