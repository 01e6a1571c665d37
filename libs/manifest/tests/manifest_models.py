"""Tiny real ONNX classifiers for tests that need a model package but not a trained network."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def softmax_model(num_classes=4, size=8, dtype=TensorProto.UINT8, scale=1.0):
    """image -> Cast -> mean over H,W,C -> times a ramp -> Softmax (finite probabilities)."""
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model
