"""Tiny real ONNX classifiers for tests that need a model package but not a trained network."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def softmax_model(num_classes=4, size=8, dtype=TensorProto.UINT8, scale=1.0, opset=18):
    """image -> Cast -> mean over H,W,C -> times a ramp -> Softmax (finite probabilities)."""
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


def guarded_model(model, manifest, images, *, false_alarm_rate=0.1):
    """``model`` with a real guard (pixel layout and colour, confidence) fitted on ``images``:
    the first half fits the cues, the second calibrates. Returns brainscan_manifest's GuardFit."""
    from brainscan_manifest.guard_fit import Cue, fit_guard
    from brainscan_manifest.guard_graph import (
        INPUT_VIEW,
        CueFeatures,
        Pooling,
        add_input_view,
        view_size,
    )

    height, width = view_size(manifest.input)
    pixels = Pooling(
        INPUT_VIEW,
        "NCHW",
        grid=2 if height % 2 == 0 and width % 2 == 0 else 1,
        grey=True,
        chroma=manifest.input.channels == 3,
    )
    cues = [
        Cue(CueFeatures("pixels", (pixels,)), "its brightness and colour are unlike"),
        Cue(
            CueFeatures("confidence", confidence_of=manifest.outputs.probabilities),
            "the model cannot settle on any class",
        ),
    ]
    half = len(images) // 2
    return fit_guard(
        add_input_view(model, manifest.input),
        manifest,
        cues,
        images[:half],
        images[half:],
        false_alarm_rate=false_alarm_rate,
        split="test images",
        method="pixel layout and confidence (test guard)",
    )
