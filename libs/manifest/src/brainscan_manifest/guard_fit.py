"""Fit the out-of-distribution guard of a model, and calibrate it (numpy and onnxruntime).

Each cue's features come from the ONNX graph itself (``add_feature_outputs``), so what is
fitted is exactly what serving computes. The features of the fitting images (the training
split) give each cue its mean and whitening; on the calibration images (the validation split,
never seen in fitting) each cue's scale is set to its (1 - rate) quantile and the guard's
threshold to the (1 - rate) quantile of the largest cue: by construction a share ``rate`` of
in-distribution images is flagged, and the test split measures how true that stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from .guard_graph import CueFeatures, FittedCue, add_feature_outputs, add_guard
from .ood import DriftReference, Histogram, OodCue, OodSpec, quantile_edges
from .preprocess import input_intensity
from .schema import Manifest

PCA_ABOVE = 256
"""Features wider than this are whitened in their principal subspace (full covariance below)."""
PCA_COMPONENTS = 64
CONFIDENCE_EDGES = [0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0]
REFERENCE_BINS = 10
_BATCH = 64


@dataclass(frozen=True)
class Cue:
    """A cue to fit: what it looks at, and what it means to a reader."""

    features: CueFeatures
    description: str


@dataclass(frozen=True)
class GuardFit:
    """A fitted guard: the served graph, its manifest section, and its calibration scores."""

    model: onnx.ModelProto
    spec: OodSpec
    calibration_scores: np.ndarray


def run_graph(model: onnx.ModelProto, input_name: str, images: np.ndarray, outputs: list[str]):
    """Outputs of ``model`` on ``images`` in batches, concatenated per output."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    parts: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
    for start in range(0, len(images), _BATCH):
        results = session.run(outputs, {input_name: images[start : start + _BATCH]})
        for name, value in zip(outputs, results, strict=True):
            parts[name].append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def ledoit_wolf(centred: np.ndarray) -> np.ndarray:
    """The Ledoit-Wolf (2004) shrunk covariance of centred samples [n, p], as scikit-learn's
    ``LedoitWolf(assume_centered=True)`` computes it: sane to invert with few samples."""
    n, p = centred.shape
    squares = centred**2
    covariance = centred.T @ centred / n
    mu = np.trace(covariance) / p
    delta_sum = np.sum((centred.T @ centred) ** 2) / n**2
    beta = (np.sum(squares.T @ squares) / n - delta_sum) / (p * n)
    delta = (delta_sum - 2.0 * mu * squares.sum() / n + p * mu**2) / p
    shrinkage = 0.0 if delta == 0 else min(beta, delta) / delta
    return (1.0 - shrinkage) * covariance + shrinkage * mu * np.eye(p)


def fit_whitening(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, W) such that ``|(f - mean) W|^2`` is the Mahalanobis distance of f.

    Up to PCA_ABOVE dimensions: the Ledoit-Wolf shrunk covariance, whose inverse stays sane
    with few images per dimension. Wider: the distance inside the top principal components.
    """
    features = np.asarray(features, dtype=np.float64)
    mean = features.mean(axis=0)
    centred = features - mean
    if features.shape[1] <= PCA_ABOVE:
        covariance = ledoit_wolf(centred)
        # Precision = W W^T with W the inverse transpose of the covariance's Cholesky factor.
        lower = np.linalg.cholesky(covariance + 1e-9 * np.eye(len(covariance)))
        whitening = np.linalg.inv(lower).T
    else:
        components = min(PCA_COMPONENTS, len(features) - 1, features.shape[1])
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        variance = singular[:components] ** 2 / max(len(features) - 1, 1)
        whitening = vt[:components].T / np.sqrt(variance + 1e-12)
    return mean, whitening


def cue_distances(features: np.ndarray, mean: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    white = (np.asarray(features, np.float64) - mean) @ whitening
    return np.sum(white * white, axis=1)


def fit_guard(
    model: onnx.ModelProto,
    manifest: Manifest,
    cues: Sequence[Cue],
    fit_images: np.ndarray,
    calibration_images: np.ndarray,
    *,
    false_alarm_rate: float,
    split: str,
    method: str,
) -> GuardFit:
    """The guarded graph and its ``ood`` section, from images of the model's input spec."""
    if len(fit_images) < 2 or len(calibration_images) < 1:
        raise ValueError("fitting the guard needs at least 2 fitting and 1 calibration image")
    with_features = add_feature_outputs(model, [cue.features for cue in cues])
    names = [cue.features.output for cue in cues]
    probabilities = manifest.outputs.probabilities
    fit = run_graph(with_features, manifest.input.name, fit_images, names)
    calibration = run_graph(
        with_features, manifest.input.name, calibration_images, [*names, probabilities]
    )
    fitted, scaled = [], []
    quantile = 1.0 - false_alarm_rate
    for cue, name in zip(cues, names, strict=True):
        mean, whitening = fit_whitening(fit[name])
        distances = cue_distances(calibration[name], mean, whitening)
        scale = max(float(np.quantile(distances, quantile)), 1e-9)
        fitted.append(FittedCue(cue.features, mean, whitening, scale))
        scaled.append(distances / scale)
    scores = np.max(np.stack(scaled, axis=1), axis=1)
    threshold = max(float(np.quantile(scores, quantile)), 1e-6)
    reference = drift_reference(
        manifest, calibration[probabilities], calibration_images, scores, split
    )
    spec = OodSpec(
        cue_names=[OodCue(name=cue.features.name, description=cue.description) for cue in cues],
        threshold=threshold,
        false_alarm_rate=false_alarm_rate,
        calibration_images=len(calibration_images),
        method=method,
        reference=reference,
    )
    outputs = [o.name for o in model.graph.output]
    return GuardFit(add_guard(with_features, fitted, spec, outputs), spec, scores)


def drift_reference(
    manifest: Manifest,
    probabilities: np.ndarray,
    images: np.ndarray,
    scores: np.ndarray,
    split: str,
) -> DriftReference:
    """The model's answers on the calibration images: what served traffic is compared with."""
    predicted = probabilities.argmax(axis=1)
    counts = np.bincount(predicted, minlength=len(manifest.classes))
    intensity = input_intensity(images, manifest.input)
    return DriftReference(
        images=len(images),
        split=split,
        class_mix={
            name: float(count) / len(images)
            for name, count in zip(manifest.classes, counts, strict=True)
        },
        confidence=Histogram.of(probabilities.max(axis=1), CONFIDENCE_EDGES),
        intensity=Histogram.of(intensity, quantile_edges(intensity, REFERENCE_BINS, 0.0, 1.0)),
        ood_score=Histogram.of(
            scores, quantile_edges(scores, REFERENCE_BINS, 0.0, float(max(scores.max(), 1.0)))
        ),
    )
