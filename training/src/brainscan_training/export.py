"""Export the trained Keras model to an ONNX model package and prove it computes the same thing.

The ONNX graph takes UINT8 NHWC pixels (a Cast node in front of the Keras graph): a quarter of
the bytes of FP32 on every request, and no way for a client to get the scaling wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from brainscan_manifest import (
    MANIFEST_FILE,
    MODEL_FILE,
    ActivationMapSpec,
    InputSpec,
    Lineage,
    Manifest,
    OutputSpec,
)
from brainscan_manifest.verify import sha256_file
from onnx import TensorProto, helper

from .model import FEATURE_MAP_LAYER, PROBABILITIES_LAYER, classifier_weights, with_feature_map

INPUT_NAME = "image"
PROBABILITIES_OUTPUT = "probabilities"
FEATURE_MAP_OUTPUT = "feature_map"
PARITY_TOLERANCE = 1e-4


class ParityError(RuntimeError):
    """ONNX and Keras disagree beyond the tolerance: the export must not be served."""


@dataclass(frozen=True)
class ParityReport:
    images: int
    max_abs_diff_probabilities: float
    max_abs_diff_feature_map: float
    label_agreement: float
    tolerance: float = PARITY_TOLERANCE

    @property
    def passed(self) -> bool:
        return self.max_abs_diff_probabilities <= self.tolerance and self.label_agreement == 1.0


def export_onnx(model, onnx_path: Path, opset: int = 17) -> onnx.ModelProto:
    """Convert to ONNX with a dynamic batch, uint8 input and outputs probabilities + feature_map."""
    import tensorflow as tf
    import tf2onnx

    two_outputs = with_feature_map(model)
    height, width, channels = two_outputs.input_shape[1:]
    signature = (tf.TensorSpec((None, height, width, channels), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(two_outputs, input_signature=signature, opset=opset)
    proto = _rename_outputs(
        proto, {PROBABILITIES_LAYER: PROBABILITIES_OUTPUT, FEATURE_MAP_LAYER: FEATURE_MAP_OUTPUT}
    )
    proto = _uint8_input(proto, INPUT_NAME)
    proto.doc_string = "brainscan MobileNetV2: uint8 NHWC RGB in, class probabilities out"
    onnx.checker.check_model(proto, full_check=True)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(onnx_path))
    return proto


def _rename_outputs(proto: onnx.ModelProto, names: dict[str, str]) -> onnx.ModelProto:
    renames = {}
    for output in proto.graph.output:
        for old, new in names.items():
            if output.name == old or output.name.startswith(f"{old}:") or old in output.name:
                renames[output.name] = new
    _rename_value(proto, renames)
    missing = set(names.values()) - {o.name for o in proto.graph.output}
    if missing:
        raise RuntimeError(f"exported graph lacks outputs {sorted(missing)}")
    return proto


def _rename_value(proto: onnx.ModelProto, renames: dict[str, str]) -> None:
    for node in proto.graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    for value in list(proto.graph.output) + list(proto.graph.input):
        value.name = renames.get(value.name, value.name)


def _uint8_input(proto: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """Replace the float input by a uint8 one followed by a Cast to float."""
    graph = proto.graph
    (old_input,) = [i for i in graph.input if i.name == name]
    float_name = f"{name}_float"
    for node in graph.node:
        node.input[:] = [float_name if n == name else n for n in node.input]
    dims = [
        d.dim_value if d.HasField("dim_value") else "batch"
        for d in old_input.type.tensor_type.shape.dim
    ]
    new_input = helper.make_tensor_value_info(name, TensorProto.UINT8, ["batch", *dims[1:]])
    graph.input.remove(old_input)
    graph.input.insert(0, new_input)
    graph.node.insert(0, helper.make_node("Cast", [name], [float_name], to=TensorProto.FLOAT))
    for output in graph.output:
        output.type.tensor_type.shape.dim[0].dim_param = "batch"
    return proto


def check_parity(model, onnx_path: Path, images: np.ndarray) -> ParityReport:
    """Keras vs onnxruntime on the same uint8 images.

    Use a trained model: an untrained MobileNetV2 outputs 0.25 everywhere and proves nothing.
    """
    import onnxruntime as ort

    keras_probs, keras_features = with_feature_map(model).predict(
        images.astype(np.float32), batch_size=32, verbose=0
    )
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_probs, onnx_features = [], []
    for start in range(0, len(images), 32):
        probs, features = session.run(
            [PROBABILITIES_OUTPUT, FEATURE_MAP_OUTPUT], {INPUT_NAME: images[start : start + 32]}
        )
        onnx_probs.append(probs)
        onnx_features.append(features)
    onnx_probs = np.concatenate(onnx_probs)
    onnx_features = np.concatenate(onnx_features)
    return ParityReport(
        images=len(images),
        max_abs_diff_probabilities=float(np.max(np.abs(keras_probs - onnx_probs))),
        max_abs_diff_feature_map=float(np.max(np.abs(keras_features - onnx_features))),
        label_agreement=float(np.mean(keras_probs.argmax(1) == onnx_probs.argmax(1))),
    )


def default_input_spec(model, resize_filter: str = "bilinear") -> InputSpec:
    height, width, channels = model.input_shape[1:]
    return InputSpec(
        name=INPUT_NAME,
        height=height,
        width=width,
        channels=channels,
        color="RGB",
        layout="NHWC",
        dtype="uint8",
        resize_filter=resize_filter,
    )


def build_manifest(
    model,
    onnx_path: Path,
    *,
    name: str,
    classes: list[str],
    default_threshold: float,
    input_spec: InputSpec | None = None,
    metrics: dict[str, float] | None = None,
    lineage: Lineage | None = None,
    description: str = "",
) -> Manifest:
    """The manifest for an exported model; input_spec is how training fed it (size, filter)."""
    spec = input_spec or default_input_spec(model)
    if spec.shape()[1:] != list(model.input_shape[1:]) or spec.name != INPUT_NAME:
        raise ValueError(f"input spec {spec.shape()} does not match the model {model.input_shape}")
    weights, bias = classifier_weights(model)
    return Manifest(
        name=name,
        description=description,
        classes=classes,
        input=spec,
        outputs=OutputSpec(
            probabilities=PROBABILITIES_OUTPUT,
            activation_map=ActivationMapSpec(
                feature_map=FEATURE_MAP_OUTPUT, layout="NHWC", weights=weights, bias=bias
            ),
        ),
        default_threshold=default_threshold,
        metrics=metrics or {},
        lineage=lineage or Lineage(),
        onnx_sha256=sha256_file(onnx_path),
    )


def export_package(
    model,
    out_dir: Path,
    classes: list[str],
    *,
    name: str = "brainscan-mobilenetv2",
    input_spec: InputSpec | None = None,
    default_threshold: float = 0.5,
    opset: int = 17,
    metrics: dict[str, float] | None = None,
    lineage: Lineage | None = None,
) -> tuple[Path, Manifest]:
    """Write ``model.onnx`` and ``manifest.json`` into out_dir; return both."""
    out_dir = Path(out_dir)
    onnx_path = out_dir / MODEL_FILE
    export_onnx(model, onnx_path, opset=opset)
    manifest = build_manifest(
        model,
        onnx_path,
        name=name,
        classes=classes,
        input_spec=input_spec,
        default_threshold=default_threshold,
        metrics=metrics,
        lineage=lineage,
    )
    manifest.save(out_dir / MANIFEST_FILE)
    return onnx_path, manifest
