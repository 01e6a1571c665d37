"""Which cues the guard combines: for the project's MobileNetV2, and for a model from elsewhere.

Measured on the quick profile's model against the project's corpus (docs/ood.md): the pixel
layout catches blanks, noise, text and photos; early-layer texture catches other modalities,
windowing and most scanner differences; mid-layer features catch drawings and lesion-free
oddities; the appearance network catches rotations, crops and contrasts no sequence makes.
Each alone misses a third or more of the corpus; the largest of them misses almost nothing.
"""

from __future__ import annotations

import re

import onnx
from brainscan_manifest import Manifest
from brainscan_manifest.guard_fit import Cue
from brainscan_manifest.guard_graph import INPUT_VIEW, CueFeatures, Pooling, view_size

APPEARANCE_PREFIX = "ood_appearance"
APPEARANCE_OUTPUT = "transform_probabilities"
UNTOUCHED = 0
"""Index of the appearance network's "no transform" class: its cue is -log that probability."""
DESCRIPTIONS = {
    "pixels": "its layout of brightness, or its colour, is unlike that of the training images",
    "texture": "its fine texture (edges, noise, sharpness) is unlike that of the training images",
    "features": "the shapes the network finds in it are unlike those in the training images",
    "feature_map": "the network's last feature map is unlike that of the training images",
    "confidence": "the model cannot settle on any class",
    "appearance": "it looks rotated, cropped, re-windowed or otherwise altered compared with "
    "the training images",
}
# Backbone layers of keras.applications.MobileNetV2 whose statistics the guard reads.
TEXTURE_LAYERS = ("Conv1_relu", "block_2_add")
FEATURE_LAYERS = ("block_5_add", "block_9_add")
_PIXEL_GRIDS = (16, 8, 4, 2)
_PLANAR_OPS = {"Conv", "AveragePool", "MaxPool", "GlobalAveragePool", "BatchNormalization"}


class CuePlanError(ValueError):
    """A cue cannot be built on this graph; the message says which tensor is missing."""


def layer_tensor(model: onnx.ModelProto, layer: str) -> Pooling:
    """Statistics of the Keras layer ``layer``'s output in a tf2onnx graph (named
    ``…/<layer>[_n]/…``), in the layout it has there."""
    pattern = re.compile(rf"/{re.escape(layer)}(_\d+)?/")
    found = sorted({out for node in model.graph.node for out in node.output if pattern.search(out)})
    if len(found) != 1:
        raise CuePlanError(f"the graph has {len(found)} outputs of layer {layer!r}, expected one")
    return Pooling(found[0], layout=tensor_layout(model, found[0]), std=True)


def tensor_layout(model: onnx.ModelProto, name: str) -> str:
    """NCHW when a convolution or pooling reads or writes the tensor (ONNX's own layout, which
    tf2onnx keeps inside the graph); NHWC when a transpose turns it into NCHW."""
    for node in model.graph.node:
        touches = (node.input[:1] == [name]) or name in node.output
        if touches and node.op_type in _PLANAR_OPS:
            return "NCHW"
        if node.op_type == "Transpose" and node.input[:1] == [name]:
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            if perm == [0, 3, 1, 2]:
                return "NHWC"
    raise CuePlanError(f"cannot tell the layout of tensor {name!r}")


def pixel_cue(manifest: Manifest) -> Cue:
    """The input's brightness on a coarse grid, and its colour when it has three channels.

    Reads ``INPUT_VIEW``: the package's graph must have it (``add_input_view``).
    """
    height, width = view_size(manifest.input)
    grid = next((g for g in _PIXEL_GRIDS if height % g == 0 and width % g == 0), 1)
    pooling = Pooling(
        INPUT_VIEW, layout="NCHW", grid=grid, grey=True, chroma=manifest.input.channels == 3
    )
    return _cue("pixels", pooling=(pooling,))


def confidence_cue(manifest: Manifest) -> Cue:
    return _cue("confidence", confidence_of=manifest.outputs.probabilities)


def appearance_cue() -> Cue:
    return _cue("appearance", surprise_of=(f"{APPEARANCE_PREFIX}/{APPEARANCE_OUTPUT}", UNTOUCHED))


def mobilenet_cues(model: onnx.ModelProto, manifest: Manifest) -> list[Cue]:
    """The project's model: pixels, texture and features at two depths each, confidence."""

    def stats(layers: tuple[str, ...]) -> tuple[Pooling, ...]:
        return tuple(layer_tensor(model, name) for name in layers)

    return [
        pixel_cue(manifest),
        _cue("texture", pooling=stats(TEXTURE_LAYERS)),
        _cue("features", pooling=stats(FEATURE_LAYERS)),
        confidence_cue(manifest),
    ]


def generic_cues(
    model: onnx.ModelProto, manifest: Manifest, taps: list[str] | None = None
) -> list[Cue]:
    """Any image classifier: pixels and confidence, the manifest's feature map if it declares
    one, and the named 4-D tensors of ``taps`` (e.g. early and middle layers) as texture."""
    cues = [pixel_cue(manifest)]
    if taps:
        known = {out for node in model.graph.node for out in node.output}
        missing = [tap for tap in taps if tap not in known]
        if missing:
            raise CuePlanError(f"the graph has no tensors named {missing}")
        stats = tuple(Pooling(tap, tensor_layout(model, tap), std=True) for tap in taps)
        cues.append(_cue("texture", pooling=stats))
    cam = manifest.outputs.activation_map
    if cam is not None:
        cues.append(_cue("feature_map", pooling=(Pooling(cam.feature_map, cam.layout, std=True),)))
    return [*cues, confidence_cue(manifest)]


def _cue(name: str, **features) -> Cue:
    return Cue(CueFeatures(name, **features), DESCRIPTIONS[name])
