"""The out-of-distribution guard's part of the manifest: its outputs, calibration and reference.

The score is computed inside the ONNX graph, so any Open Inference Protocol server that serves
the file serves the guard too. The graph's metadata carries the sha256 of this section: a
reference edited afterwards, or copied from another model, no longer matches the file whose
own sha256 the registry vouches for, and ``verify_package`` refuses it.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from pydantic import Field, model_validator

from .base import Strict

OOD_DIGEST_KEY = "brainscan.ood.sha256"
"""ONNX metadata key holding ``ood_digest`` of the manifest's ``ood`` section."""


class Histogram(Strict):
    """A distribution as bin edges and the share of values in each bin.

    Values below the first edge count in the first bin and above the last in the last one, so
    a served value always lands somewhere and shifts show up at the ends.
    """

    edges: list[float] = Field(min_length=2)
    shares: list[float]

    @model_validator(mode="after")
    def _consistent(self) -> Histogram:
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("histogram edges must increase")
        if len(self.shares) != len(self.edges) - 1:
            raise ValueError("a histogram needs one share per bin (len(edges) - 1)")
        if any(s < 0 for s in self.shares) or abs(sum(self.shares) - 1.0) > 1e-3:
            raise ValueError("histogram shares must be >= 0 and sum to 1")
        return self

    @classmethod
    def of(cls, values: np.ndarray, edges: np.ndarray | list[float]) -> Histogram:
        edges = [float(e) for e in edges]
        counts = np.bincount(bin_indices(values, edges), minlength=len(edges) - 1)
        total = max(int(counts.sum()), 1)
        return cls(edges=edges, shares=[float(c) / total for c in counts])

    def bins(self, values: np.ndarray) -> np.ndarray:
        return bin_indices(values, self.edges)


def bin_indices(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """The bin of each value (outside values go to the end bins)."""
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    return np.searchsorted(inner, np.asarray(values, dtype=np.float64), side="right")


def quantile_edges(values: np.ndarray, bins: int, low: float, high: float) -> list[float]:
    """Edges at the values' quantiles (equal shares on the reference), within [low, high]."""
    inner = np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0, 1, bins + 1)[1:-1])
    edges = np.unique(np.concatenate([[low], np.clip(inner, low, high), [high]]))
    if len(edges) < 2:
        edges = np.array([low, high])
    return [float(e) for e in edges]


class DriftReference(Strict):
    """What served inputs are compared with: the model's own answers on its calibration split."""

    images: int = Field(ge=1, description="Images the reference was computed on.")
    split: str = Field(description="Which images: e.g. the validation split of the training data.")
    class_mix: dict[str, float] = Field(description="Share of each predicted class.")
    confidence: Histogram = Field(description="Confidence of the predicted class.")
    intensity: Histogram = Field(description="Mean pixel value of the model input, 0..1.")
    ood_score: Histogram = Field(description="The guard's score.")

    @model_validator(mode="after")
    def _mix_sums_to_one(self) -> DriftReference:
        if abs(sum(self.class_mix.values()) - 1.0) > 1e-3:
            raise ValueError("class_mix shares must sum to 1")
        return self


class AspectRange(Strict):
    """Width / height of the images the model was trained on, widened by a tolerance.

    The graph only sees the resized input, in which a squashed upload looks normal again: this
    is the one cue the gateway checks on the upload itself.
    """

    low: float = Field(gt=0)
    high: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AspectRange:
        if self.high < self.low:
            raise ValueError("aspect_ratio.high must be >= low")
        return self

    @classmethod
    def of(cls, sizes: list[tuple[int, int]], tolerance: float = 1.25) -> AspectRange:
        ratios = np.array([width / height for width, height in sizes], dtype=np.float64)
        low, high = np.quantile(ratios, [0.001, 0.999])
        return cls(low=float(low / tolerance), high=float(high * tolerance))

    def fits(self, width: int, height: int) -> bool:
        return self.low <= width / height <= self.high


PROPORTIONS_CUE = "proportions"
PROPORTIONS_DESCRIPTION = "its width-to-height ratio is unlike that of the training images"


class OodCue(Strict):
    """One of the signals the guard combines, named for the person reading an answer."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=1, description="What differs, in plain words.")


class OodSpec(Strict):
    """The guard: its ONNX outputs, the threshold and how it was calibrated."""

    score: str = Field("ood_score", description="ONNX output [N]: the guard's score.")
    cues: str = Field(
        "ood_cues", description="ONNX output [N, K]: each cue's score over its own threshold."
    )
    cue_names: list[OodCue] = Field(min_length=1)
    threshold: float = Field(gt=0, description="Out of distribution when score > threshold.")
    false_alarm_rate: float = Field(
        gt=0, lt=1, description="Target share of in-distribution images flagged (calibration)."
    )
    calibration_images: int = Field(ge=1)
    method: str = Field(description="How the score is computed, for the record.")
    reference: DriftReference
    aspect_ratio: AspectRange | None = Field(
        None, description="Upload proportions of the training images; None: not checked."
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Measured on held-out data: false alarms, detection."
    )

    @model_validator(mode="after")
    def _unique_cues(self) -> OodSpec:
        names = [cue.name for cue in self.cue_names]
        if len(set(names)) != len(names):
            raise ValueError(f"cue names must be unique: {names}")
        return self

    def cue(self, index: int) -> OodCue:
        return self.cue_names[index]


def ood_digest(spec: OodSpec) -> str:
    """sha256 of the section's canonical JSON (what the ONNX metadata must carry)."""
    # Unset optional fields are left out: a field added to the schema later does not change
    # the digest of packages made before it, and setting one afterwards still does.
    document = spec.model_dump(mode="json", exclude_none=True)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
