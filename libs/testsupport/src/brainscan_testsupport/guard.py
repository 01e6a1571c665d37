"""A real out-of-distribution guard for test models, fitted with brainscan_manifest's own code.

The cues are cheap and work on any classifier: the input's pixel layout and colour (a 2x2 grid
of grey and chroma where the size allows), and the model's confidence. Fitting needs a few
dozen images; the first half fits the cues, the second calibrates the threshold.
"""

from __future__ import annotations

import numpy as np
import onnx
from brainscan_manifest import Manifest
from brainscan_manifest.guard_fit import Cue, GuardFit, fit_guard
from brainscan_manifest.guard_graph import (
    INPUT_VIEW,
    CueFeatures,
    Pooling,
    add_input_view,
    view_size,
)


def guarded_model(
    model: onnx.ModelProto,
    manifest: Manifest,
    images: np.ndarray,
    *,
    false_alarm_rate: float = 0.1,
) -> GuardFit:
    """``model`` with a guard (pixel layout and colour, confidence) fitted on ``images`` (model
    inputs, as the manifest's input spec says): the first half fits the cues, the second
    calibrates. Returns brainscan_manifest's GuardFit (the guarded graph and its ``ood``)."""
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


def with_guard(
    model: onnx.ModelProto,
    manifest: Manifest,
    images: np.ndarray,
    *,
    false_alarm_rate: float = 0.1,
) -> tuple[onnx.ModelProto, Manifest]:
    """The guarded model and the manifest with its ``ood`` section (``guarded_model``), ready
    for ``save_package``."""
    fit = guarded_model(model, manifest, images, false_alarm_rate=false_alarm_rate)
    return fit.model, manifest.model_copy(update={"ood": fit.spec})
