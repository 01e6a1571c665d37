"""Tiny real ONNX image classifiers built with onnx.helper: no training, no TensorFlow.

Three models for three purposes:

``tiny_classifier``
    image -> per-pixel features (MatMul + ReLU, the "feature map") -> global mean -> dense ->
    softmax, with the dense layer returned so a manifest can carry class activation map (CAM)
    weights. The shape of a trained export (probabilities + feature map), for the services and
    the load test: layout, dtype, size, feature count, a pooled (coarser) feature map and odd
    or broken-but-valid outputs are options.
``brightness_model``
    image -> mean brightness -> times a ramp -> softmax: the smallest model with finite
    probabilities and a single output, for the package checks and the guard builder.
``quadrant_model``
    averages the four quadrants of a ``quadrant_image`` and maps them to classes through a
    matrix (``PERFECT``, ``CONFUSED``, ``CONSTANT``): classifiers of known quality, scored for
    real by training's evaluation and registry tests and model-sync's checks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


class TinyClassifier(NamedTuple):
    """A ``tiny_classifier`` model and its dense layer: weights [K, C] and bias [C], exactly
    what a class activation map needs."""

    model: onnx.ModelProto
    dense: np.ndarray
    bias: np.ndarray


def tiny_classifier(
    *,
    size: int = 8,
    features: int = 5,
    num_outputs: int = len(CLASSES),
    dtype: str = "uint8",
    layout: str = "NHWC",
    seed: int = 0,
    map_size: int | None = None,
    probabilities_dtype: int = TensorProto.FLOAT,
    feature_map_dtype: int = TensorProto.FLOAT,
    feature_map_shape: list[int | str] | None = None,
    feature_map_rank: int = 4,
) -> TinyClassifier:
    """image -> per-pixel features (the "feature map") -> global mean -> dense -> softmax.

    Input "image" [N, size, size, 3] (NHWC) or [N, 3, size, size] (NCHW), uint8 or float32
    (0-255 either way; the model scales by 1/255); outputs "probabilities" [N, num_outputs] and
    "feature_map" in the same layout. The weights depend on ``seed`` only (and the counts), so
    the same seed gives the same model. ``map_size`` average-pools the feature map down to
    ``map_size`` x ``map_size`` (``size`` must be a multiple), as a CNN's last block is coarser
    than its input. The output dtypes (a Cast at the end) and the feature map's declared shape
    can be changed, and ``feature_map_rank=3`` averages its channels away whatever the declared
    shape says: models that are odd or broken but valid ONNX.
    """
    rng = np.random.default_rng(seed)
    pixel_weights = rng.normal(0, 1, (3, features)).astype(np.float32)
    dense = rng.normal(0, 3, (features, num_outputs)).astype(np.float32)
    bias = rng.normal(0, 0.1, (num_outputs,)).astype(np.float32)
    onnx_dtype = TensorProto.UINT8 if dtype == "uint8" else TensorProto.FLOAT
    side = map_size or size
    in_shape = ["N", size, size, 3] if layout == "NHWC" else ["N", 3, size, size]
    fmap_shape = ["N", side, side, features] if layout == "NHWC" else ["N", features, side, side]
    nodes = []
    source = "image"
    if layout == "NCHW":
        nodes.append(helper.make_node("Transpose", [source], ["nhwc"], perm=[0, 2, 3, 1]))
        source = "nhwc"
    nodes += [
        helper.make_node("Cast", [source], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["pixels", "inv255"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "pixel_weights"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["features_nhwc"]),
    ]
    map_nhwc = "features_nhwc"
    if map_size is not None:
        pool = size // map_size
        nodes += [
            helper.make_node("Transpose", [map_nhwc], ["features_nchw"], perm=[0, 3, 1, 2]),
            helper.make_node(
                "AveragePool",
                ["features_nchw"],
                ["pooled_nchw"],
                kernel_shape=[pool, pool],
                strides=[pool, pool],
            ),
            helper.make_node("Transpose", ["pooled_nchw"], ["map_nhwc"], perm=[0, 2, 3, 1]),
        ]
        map_nhwc = "map_nhwc"
    nodes += [
        helper.make_node("ReduceMean", [map_nhwc], ["pooled"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["pooled", "dense"], ["dense_out"]),
        helper.make_node("Add", ["dense_out", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["softmax"], axis=-1),
        helper.make_node("Cast", ["softmax"], ["probabilities"], to=probabilities_dtype),
    ]
    if layout == "NCHW":
        nodes.append(helper.make_node("Transpose", [map_nhwc], ["features"], perm=[0, 3, 1, 2]))
    else:
        nodes.append(helper.make_node("Identity", [map_nhwc], ["features"]))
    if feature_map_rank == 3:
        axis = 3 if layout == "NHWC" else 1
        nodes.append(
            helper.make_node("ReduceMean", ["features"], ["flat"], axes=[axis], keepdims=0)
        )
    nodes.append(
        helper.make_node(
            "Cast",
            ["features" if feature_map_rank == 4 else "flat"],
            ["feature_map"],
            to=feature_map_dtype,
        )
    )
    graph = helper.make_graph(
        nodes,
        "tiny_classifier",
        [helper.make_tensor_value_info("image", onnx_dtype, in_shape)],
        [
            helper.make_tensor_value_info("probabilities", probabilities_dtype, ["N", num_outputs]),
            helper.make_tensor_value_info(
                "feature_map", feature_map_dtype, feature_map_shape or fmap_shape
            ),
        ],
        initializer=[
            numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255"),
            numpy_helper.from_array(pixel_weights, "pixel_weights"),
            numpy_helper.from_array(dense, "dense"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return TinyClassifier(model, dense, bias)


def brightness_model(
    num_classes: int = 4,
    size: int = 8,
    dtype: int = TensorProto.UINT8,
    scale: float = 1.0,
    opset: int = 18,
) -> onnx.ModelProto:
    """image [n, size, size, 3] -> Cast -> mean over H,W,C -> times a ramp 0..``scale`` ->
    Softmax -> "probabilities" [n, num_classes] (finite, unless ``scale`` is not). ``opset``
    below 18 takes ReduceMean's axes as an attribute, as older exporters wrote it."""
    mean = (
        helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0)
        if opset >= 18
        else helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2, 3], keepdims=0)
    )
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        mean,
        helper.make_node("Unsqueeze", ["m", "one"], ["m2"]),
        helper.make_node("Mul", ["m2", "ramp"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    inits = [
        numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
        numpy_helper.from_array(np.linspace(0, scale, num_classes, dtype=np.float32), "ramp"),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("image", dtype, ["n", size, size, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", num_classes])],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


QUADRANT_SIZE = 16
PERFECT = np.eye(4, dtype=np.float32)
# Confuses pituitary with notumor: macro F1 drops to about 0.65.
CONFUSED = np.eye(4, dtype=np.float32)[:, [0, 1, 2, 2]]
CONSTANT = np.zeros((4, 4), dtype=np.float32)


def quadrant_image(label: int, rng: np.random.Generator, size: int = QUADRANT_SIZE) -> np.ndarray:
    """A uint8 RGB image, dark except one bright quadrant whose index (row-major) is ``label``."""
    image = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    half = size // 2
    row, col = divmod(label, 2)
    image[row * half : (row + 1) * half, col * half : (col + 1) * half] += 180
    return image


def quadrant_model(
    mapping: np.ndarray, size: int = QUADRANT_SIZE, num_classes: int = 4
) -> onnx.ModelProto:
    """uint8 NHWC "image" -> the four quadrant means -> times ``mapping`` [4, C] -> softmax ->
    "probabilities" [batch, num_classes]. The identity classifies quadrant images perfectly."""
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
