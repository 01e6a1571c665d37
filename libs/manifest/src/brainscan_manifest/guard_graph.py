"""The out-of-distribution guard as ONNX nodes appended to a classifier's graph.

A cue turns tensors of the graph into one number per image. Its features are statistics of
tensors pooled over space (per-channel mean and standard deviation, a coarse grid of means)
or the classifier's own confidence; they are whitened against the training images (mean and a
whitening matrix W, so that ``|(f - mean) W|^2`` is a Mahalanobis distance) and divided by the
cue's scale, so that 1.0 is the cue's calibration quantile. The guard's score is its largest
cue. Building happens in two steps so that fitting uses the very nodes serving runs:
``add_feature_outputs`` exposes each cue's raw features, ``add_guard`` adds the rest.

Needs the ``onnx`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .ood import OOD_DIGEST_KEY, OodSpec, ood_digest
from .schema import InputSpec

FEATURES_PREFIX = "ood_features."
INPUT_VIEW = "ood_input/view"
"""The input as float pixels 0..255, NCHW, averaged over 2 x 2 when the sides are even: what
the pixel cue and the appearance network read (``add_input_view``)."""
_EPSILON = 1e-6


@dataclass(frozen=True)
class Pooling:
    """Statistics of one 4-D tensor of the graph, pooled over its spatial axes."""

    tensor: str
    layout: Literal["NHWC", "NCHW"] = "NHWC"
    grid: int = 1
    """Means over a grid x grid of cells (1: over the whole image)."""
    std: bool = False
    """Also each channel's standard deviation over the whole image (texture)."""
    grey: bool = False
    """Average the channels first (for the input image: its colour is a cue of its own)."""
    chroma: bool = False
    """Also the mean spread between each pixel's channels, max - min (an MRI has none)."""


@dataclass(frozen=True)
class CueFeatures:
    """What one cue looks at: pooled tensors, or the classifier's confidence."""

    name: str
    pooling: tuple[Pooling, ...] = ()
    confidence_of: str | None = None
    """A probabilities tensor: the feature is -log(max probability)."""
    surprise_of: tuple[str, int] | None = None
    """(probabilities tensor, class index): the feature is -log(probability of that class)."""

    @property
    def output(self) -> str:
        return FEATURES_PREFIX + self.name


@dataclass(frozen=True)
class FittedCue:
    """A cue with its whitening against the training images and its calibration scale."""

    features: CueFeatures
    mean: np.ndarray  # [D]
    whitening: np.ndarray  # [D, k]
    scale: float


class _Builder:
    """Appends nodes with unique names; every constant becomes an initializer."""

    def __init__(self, model: onnx.ModelProto, prefix: str) -> None:
        self.graph = model.graph
        self.prefix = prefix
        self.count = 0
        self.opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{self.prefix}/{hint}_{self.count}"

    def const(self, value: np.ndarray, hint: str = "const") -> str:
        name = self.name(hint)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: Sequence[str], hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op.lower())
        self.graph.node.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def reduce(self, op: str, tensor: str, axes: list[int], keepdims: int, hint: str) -> str:
        """ReduceMean/Max/Sum over ``axes``: an input from opset 18 (ReduceSum: 13), an
        attribute before, so the guard fits the opset the classifier was exported with."""
        as_input = self.opset >= (13 if op == "ReduceSum" else 18)
        if as_input:
            axes_name = self.const(np.array(axes, np.int64), "axes")
            return self.node(op, [tensor, axes_name], hint, keepdims=keepdims)
        return self.node(op, [tensor], hint, axes=axes, keepdims=keepdims)


def _value_types(model: onnx.ModelProto) -> tuple[dict[str, list[int | None]], dict[str, int]]:
    """Shape (None: not static) and element type of every value, after shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes, types = {}, {}
    for value in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        tensor_type = value.type.tensor_type
        shapes[value.name] = [
            d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
        ]
        types[value.name] = tensor_type.elem_type
    return shapes, types


def _pool(b: _Builder, pooling: Pooling, dims: list[int | None], elem_type: int) -> list[str]:
    """[N, D_i] feature tensors of one pooling (chroma, means or grid, std).

    Works in the tensor's own layout: a transpose of a large early feature map would cost more
    than all the statistics taken of it.
    """
    if len(dims) != 4:
        raise ValueError(f"tensor {pooling.tensor!r} has rank {len(dims)}, pooling needs 4")
    nhwc = pooling.layout == "NHWC"
    spatial, channel = ([1, 2], 3) if nhwc else ([2, 3], 1)
    height, width = dims[spatial[0]], dims[spatial[1]]
    if None in (height, width):
        raise ValueError(f"tensor {pooling.tensor!r} needs static spatial dims, has {dims}")
    x = pooling.tensor
    if elem_type != TensorProto.FLOAT:
        x = b.node("Cast", [x], "cast", to=TensorProto.FLOAT)
    features = []
    if pooling.chroma or pooling.grey:
        planes = _channel_planes(b, x, channel, dims[channel])
    if pooling.chroma:
        spread = b.node("Sub", [b.node("Max", planes), b.node("Min", planes)], "chroma_spread")
        chroma = b.reduce("ReduceMean", spread, [1, 2], 0, "chroma_mean")
        features.append(b.node("Unsqueeze", [chroma, b.const(np.array([1], np.int64))]))
    if pooling.grey:
        x, spatial = _mean_of(b, planes), [1, 2]
    if pooling.grid > 1:
        if height % pooling.grid or width % pooling.grid:
            raise ValueError(
                f"tensor {pooling.tensor!r}: {height}x{width} is not divisible by grid "
                f"{pooling.grid}"
            )
        if pooling.grey:  # AveragePool wants NCHW: one channel is a reshape away
            planar = b.node("Reshape", [x, b.const(np.array([0, 1, height, width], np.int64))])
        else:
            planar = b.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2]) if nhwc else x
        kernel = [height // pooling.grid, width // pooling.grid]
        cells = b.node("AveragePool", [planar], "grid", kernel_shape=kernel, strides=kernel)
        features.append(b.node("Flatten", [cells], "grid_flat", axis=1))
    mean = None
    if pooling.grid == 1 or pooling.std:
        mean = b.reduce("ReduceMean", x, spatial, 0, "mean")
    if pooling.grid == 1:
        features.append(mean)
    if pooling.std:
        # sqrt(E[x^2] - E[x]^2): two reductions of the map, no centred copy of it.
        squares = b.reduce("ReduceMean", b.node("Mul", [x, x], "squares"), spatial, 0, "mean_sq")
        variance = b.node("Sub", [squares, b.node("Mul", [mean, mean], "mean_squared")])
        variance = b.node("Max", [variance, b.const(np.float32(0.0))], "variance")
        features.append(b.node("Sqrt", [b.node("Add", [variance, b.const(np.float32(_EPSILON))])]))
    return features


def _channel_planes(b: _Builder, x: str, channel: int, channels: int | None) -> list[str]:
    """Each channel as an [N, H, W] tensor.

    Reducing over the channel axis, or broadcasting against it, runs in onnxruntime about a
    hundred times slower than element-wise ops between whole planes: planes it is.
    """
    if channels is None:
        raise ValueError("the channel count of the input must be static")
    return [
        b.node("Gather", [x, b.const(np.array(index, np.int64))], "plane", axis=channel)
        for index in range(channels)
    ]


def _mean_of(b: _Builder, planes: list[str]) -> str:
    if len(planes) == 1:
        return planes[0]
    total = b.node("Sum", planes, "plane_sum")
    return b.node("Mul", [total, b.const(np.float32(1.0 / len(planes)))], "grey")


def _confidence_feature(b: _Builder, probabilities: str) -> str:
    """-log(max probability) as [N, 1]: near 0 for a confident answer."""
    top = b.reduce("ReduceMax", probabilities, [1], 1, "top")
    clipped = b.node("Max", [top, b.const(np.float32(_EPSILON))])
    return b.node("Neg", [b.node("Log", [clipped])], "neg_log_confidence")


def _surprise_feature(b: _Builder, probabilities: str, index: int) -> str:
    """-log(probability of class ``index``) as [N, 1]."""
    starts, ends = b.const(np.array([index], np.int64)), b.const(np.array([index + 1], np.int64))
    column = b.node("Slice", [probabilities, starts, ends, b.const(np.array([1], np.int64))])
    clipped = b.node("Max", [column, b.const(np.float32(_EPSILON))])
    return b.node("Neg", [b.node("Log", [clipped])], "neg_log_probability")


def add_input_view(model: onnx.ModelProto, spec: InputSpec) -> onnx.ModelProto:
    """A copy of ``model`` computing ``INPUT_VIEW`` from its input, once for every reader.

    Half resolution is plenty for layout, colour and orientation, and a quarter of the pixels
    is a quarter of the cost of everything that reads them.
    """
    model = _copy(model)
    b = _Builder(model, "ood_input")
    # Cast, then transpose: onnxruntime transposes float twice as fast as uint8 (33 against
    # 62 us for a 128 x 128 RGB image).
    pixels = b.node("Cast", [spec.name], "float", to=TensorProto.FLOAT)
    if spec.layout == "NHWC":
        pixels = b.node("Transpose", [pixels], "planar", perm=[0, 3, 1, 2])
    if spec.dtype == "float32" and (spec.scale != 1.0 or spec.offset != 0.0):
        centred = b.node("Sub", [pixels, b.const(np.float32(spec.offset))], "unshift")
        pixels = b.node("Div", [centred, b.const(np.float32(spec.scale))], "unscale")
    if spec.height % 2 == 0 and spec.width % 2 == 0:
        pixels = b.node("AveragePool", [pixels], "half", kernel_shape=[2, 2], strides=[2, 2])
    model.graph.node.append(helper.make_node("Identity", [pixels], [INPUT_VIEW]))
    return model


def view_size(spec: InputSpec) -> tuple[int, int]:
    """Height and width of ``INPUT_VIEW`` for an input spec."""
    halve = spec.height % 2 == 0 and spec.width % 2 == 0
    return (spec.height // 2, spec.width // 2) if halve else (spec.height, spec.width)


def attach_network(
    model: onnx.ModelProto, network: onnx.ModelProto, spec: InputSpec, prefix: str
) -> onnx.ModelProto:
    """A copy of ``model`` (with ``add_input_view``) that also runs ``network``, in one call.

    ``network`` takes the grey view, float [N, view_size] 0..255. Every name of ``network``
    gets ``prefix/``, so its tensors are ``prefix/<name>``.
    """
    from onnx import compose

    model = _copy(model)
    b = _Builder(model, prefix + "_input")
    network_opset = next(o.version for o in network.opset_import if o.domain in ("", "ai.onnx"))
    if network_opset != b.opset:
        raise ValueError(
            f"the attached network uses opset {network_opset}, the model {b.opset}: export it "
            "at the model's opset (the same op can take different inputs in each)"
        )
    grey = _mean_of(b, _channel_planes(b, INPUT_VIEW, 1, spec.channels))
    network = compose.add_prefix(network, prefix + "/")
    (network_input,) = [i.name for i in network.graph.input]
    for node in network.graph.node:
        node.input[:] = [grey if name == network_input else name for name in node.input]
    model.graph.node.extend(network.graph.node)
    model.graph.initializer.extend(network.graph.initializer)
    model.graph.value_info.extend(network.graph.value_info)
    known = {o.domain for o in model.opset_import}
    model.opset_import.extend(o for o in network.opset_import if o.domain not in known)
    return model


def add_feature_outputs(model: onnx.ModelProto, cues: Sequence[CueFeatures]) -> onnx.ModelProto:
    """A copy of ``model`` with each cue's raw features as output ``ood_features.<name>`` [N, D]."""
    model = _copy(model)
    dims, types = _value_types(model)
    b = _Builder(model, "ood")
    for cue in cues:
        parts: list[str] = []
        for pooling in cue.pooling:
            if pooling.tensor not in dims:
                raise ValueError(f"cue {cue.name!r}: no tensor {pooling.tensor!r} in the graph")
            parts += _pool(b, pooling, dims[pooling.tensor], types.get(pooling.tensor, 1))
        if cue.confidence_of is not None:
            parts.append(_confidence_feature(b, cue.confidence_of))
        if cue.surprise_of is not None:
            parts.append(_surprise_feature(b, *cue.surprise_of))
        if not parts:
            raise ValueError(f"cue {cue.name!r} looks at nothing")
        joined = parts[0] if len(parts) == 1 else b.node("Concat", parts, "features", axis=1)
        model.graph.node.append(helper.make_node("Identity", [joined], [cue.output]))
        model.graph.output.append(
            helper.make_tensor_value_info(cue.output, TensorProto.FLOAT, ["batch", None])
        )
    return model


def add_guard(
    model_with_features: onnx.ModelProto,
    cues: Sequence[FittedCue],
    spec: OodSpec,
    keep_outputs: Sequence[str],
) -> onnx.ModelProto:
    """The served graph: ``keep_outputs`` plus the guard's ``spec.score`` [N] and
    ``spec.cues`` [N, K]; its metadata carries the digest of ``spec``."""
    if [cue.features.name for cue in cues] != [cue.name for cue in spec.cue_names]:
        raise ValueError("the fitted cues and the spec's cue names differ")
    model = _copy(model_with_features)
    b = _Builder(model, "ood_guard")
    joined = _cue_distances(b, cues)
    model.graph.node.append(helper.make_node("Identity", [joined], [spec.cues]))
    top = b.reduce("ReduceMax", joined, [1], 0, "top_cue")
    model.graph.node.append(helper.make_node("Identity", [top], [spec.score]))
    wanted = list(keep_outputs)
    kept = [o for o in model.graph.output if o.name in wanted]
    del model.graph.output[:]
    model.graph.output.extend(sorted(kept, key=lambda o: wanted.index(o.name)))
    model.graph.output.extend(
        [
            helper.make_tensor_value_info(spec.score, TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info(spec.cues, TensorProto.FLOAT, ["batch", len(cues)]),
        ]
    )
    set_digest(model, spec)
    onnx.checker.check_model(model)
    return model


def _cue_distances(b: _Builder, cues: Sequence[FittedCue]) -> str:
    """[N, cues]: each cue's |(f - mean) W|^2 / scale, all cues in one pass.

    One block-diagonal whitening for all cues (each block divided by the root of its cue's
    scale) and a 0/1 matrix summing each cue's squares: six nodes whatever the number of cues,
    where one chain per cue took 27. At the batch sizes served, onnxruntime's cost per node
    outweighs the zeros the blocks multiply (measured in docs/ood.md).
    """
    widths = [cue.whitening.shape[1] for cue in cues]
    depths = [cue.whitening.shape[0] for cue in cues]
    whitening = np.zeros((sum(depths), sum(widths)), np.float32)
    summing = np.zeros((sum(widths), len(cues)), np.float32)
    row = column = 0
    for index, cue in enumerate(cues):
        depth, width = cue.whitening.shape
        block = cue.whitening / np.sqrt(cue.scale)
        whitening[row : row + depth, column : column + width] = block
        summing[column : column + width, index] = 1.0
        row, column = row + depth, column + width
    mean = np.concatenate([cue.mean for cue in cues]).astype(np.float32)
    outputs = [cue.features.output for cue in cues]
    features = outputs[0] if len(outputs) == 1 else b.node("Concat", outputs, "features", axis=1)
    centred = b.node("Sub", [features, b.const(mean, "mean")])
    white = b.node("MatMul", [centred, b.const(whitening, "white")])
    squares = b.node("Mul", [white, white])
    return b.node("MatMul", [squares, b.const(summing, "per_cue")], "cues")


def set_digest(model: onnx.ModelProto, spec: OodSpec) -> None:
    """Record which ``ood`` section the graph was built with (see ``verify._check_ood``)."""
    others = [p for p in model.metadata_props if p.key != OOD_DIGEST_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(others)
    model.metadata_props.append(
        onnx.StringStringEntryProto(key=OOD_DIGEST_KEY, value=ood_digest(spec))
    )


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy
