"""Whether an image looks like the images the served model was trained on.

The served model's ONNX graph computes the score (manifest ``ood``); this module reads it from
the inference answer, compares it with the model's calibrated threshold and says why in words.
A model without a guard is answered with ``in_distribution = None``: the check is unavailable,
which is said, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from brainscan_manifest import Manifest
from brainscan_manifest.ood import PROPORTIONS_CUE, PROPORTIONS_DESCRIPTION
from brainscan_v2protocol import InferResponse

from ..upstream.client import InferenceFailed

NOT_ASSESSED = "not assessed: this image does not look like the images this model was trained on"
UNAVAILABLE = (
    "the served model carries no training reference, so whether this image resembles its "
    "training images cannot be checked"
)


@dataclass(frozen=True)
class DistributionCheck:
    """The guard's verdict on one image."""

    in_distribution: bool | None
    """None: the served model has no guard."""
    score: float | None = None
    threshold: float | None = None
    cue: str | None = None
    """The strongest of the guard's cues (its name in the manifest)."""
    reason: str = UNAVAILABLE

    @property
    def result(self) -> str:
        """The metric label: in_distribution, out_of_distribution or unavailable."""
        if self.in_distribution is None:
            return "unavailable"
        return "in_distribution" if self.in_distribution else "out_of_distribution"


def guard_outputs(manifest: Manifest) -> list[str]:
    """The ONNX outputs the check reads (none for a model without a guard)."""
    return [manifest.ood.score, manifest.ood.cues] if manifest.ood else []


def check_distribution(
    result: InferResponse, manifest: Manifest, size: tuple[int, int] | None = None
) -> DistributionCheck:
    """The verdict for the one image of ``result`` (uploaded at ``size``, width and height);
    InferenceFailed if the guard's output is missing or unusable (the model promised a guard,
    so its absence is a fault, not a pass)."""
    ood = manifest.ood
    if ood is None:
        return DistributionCheck(in_distribution=None)
    score = result.outputs.get(ood.score)
    cues = result.outputs.get(ood.cues)
    shapes_fit = score is not None and cues is not None and score.shape == (1,)
    if not shapes_fit or cues.shape != (1, len(ood.cue_names)):
        raise InferenceFailed(
            "the inference service returned no usable out-of-distribution score "
            f"(expected {ood.score!r} [1] and {ood.cues!r} [1, {len(ood.cue_names)}])"
        )
    value = float(score[0])
    if not np.all(np.isfinite(cues)) or not np.isfinite(value):
        raise InferenceFailed(
            "the inference service returned a non-finite out-of-distribution score"
        )
    strongest = ood.cue(int(np.argmax(cues[0])))
    inside = value <= ood.threshold
    scores = f"score {value:.2f}, threshold {ood.threshold:.2f}"
    if inside and size is not None and ood.aspect_ratio and not ood.aspect_ratio.fits(*size):
        ratio, bounds = size[0] / size[1], ood.aspect_ratio
        return DistributionCheck(
            in_distribution=False,
            score=value,
            threshold=ood.threshold,
            cue=PROPORTIONS_CUE,
            reason=(
                f"{NOT_ASSESSED}: {PROPORTIONS_DESCRIPTION} ({ratio:.2f}, training "
                f"{bounds.low:.2f}-{bounds.high:.2f}; {scores})"
            ),
        )
    if inside:
        reason = f"the image resembles the images the model was trained on ({scores})"
    else:
        reason = f"{NOT_ASSESSED}: {strongest.description} ({scores})"
    return DistributionCheck(
        in_distribution=inside,
        score=value,
        threshold=ood.threshold,
        cue=strongest.name,
        reason=reason,
    )
