"""Give a model package its out-of-distribution guard: fit, calibrate, write and verify.

The pipeline's ``guard`` stage runs it on the exported MobileNetV2 with the training split
(fitting) and the validation split (calibration); ``brainscan-train reference`` runs it on a
model from elsewhere with a folder of its in-distribution images.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_manifest.guard_fit import Cue, GuardFit, fit_guard
from brainscan_manifest.guard_graph import add_input_view, attach_network, set_digest, view_size
from brainscan_manifest.ood import AspectRange, OodSpec
from brainscan_manifest.verify import load_package, sha256_file, verify_package

from .cues import APPEARANCE_PREFIX, appearance_cue

log = logging.getLogger(__name__)

CuePlan = Callable[[onnx.ModelProto, Manifest], list[Cue]]


@dataclass(frozen=True)
class GuardSettings:
    """How the guard is fitted (params.yaml ``ood``)."""

    false_alarm_rate: float = 0.01
    fit_images: int = 4000
    """At most this many fitting images for the cue statistics (all train the appearance net)."""
    appearance: bool = True
    appearance_epochs: int = 5
    appearance_repeats: int = 2
    seed: int = 7


def fit_package_guard(
    source_dir: Path,
    plan: CuePlan,
    fit_images: np.ndarray,
    calibration_images: np.ndarray,
    settings: GuardSettings,
    *,
    split: str,
    fit_sizes: list[tuple[int, int]] | None = None,
) -> tuple[Manifest, GuardFit]:
    """The guard of the package in ``source_dir`` (not written yet: evaluate it first).

    ``fit_sizes``, the (width, height) of the fitting images as uploaded, adds the check of
    an upload's proportions.
    """
    onnx_path, manifest = load_package(source_dir)
    model = add_input_view(onnx.load(str(onnx_path)), manifest.input)
    cues = plan(model, manifest)
    if settings.appearance:
        model = _with_appearance(model, manifest, fit_images, settings)
        cues.append(appearance_cue())
    rng = np.random.default_rng(settings.seed)
    if len(fit_images) > settings.fit_images:
        fit_images = fit_images[np.sort(rng.choice(len(fit_images), settings.fit_images, False))]
    started = time.perf_counter()
    fit = fit_guard(
        model,
        manifest,
        cues,
        fit_images,
        calibration_images,
        false_alarm_rate=settings.false_alarm_rate,
        split=split,
        method=_method(cues, len(fit_images)),
    )
    if fit_sizes:
        spec = fit.spec.model_copy(update={"aspect_ratio": AspectRange.of(fit_sizes)})
        fit = GuardFit(fit.model, spec, fit.calibration_scores)
    log.info(
        "guard fitted in %.0f s: %d cues, threshold %.3f at a %.1f %% false-alarm rate",
        time.perf_counter() - started,
        len(cues),
        fit.spec.threshold,
        100 * settings.false_alarm_rate,
    )
    return manifest, fit


def write_guarded_package(
    out_dir: Path, model: onnx.ModelProto, manifest: Manifest, spec: OodSpec
) -> tuple[Path, Manifest]:
    """``out_dir`` = model.onnx (its digest set for ``spec``) + manifest.json, verified."""
    set_digest(model, spec)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    onnx_path = out_dir / MODEL_FILE
    onnx.save(model, str(onnx_path))
    guarded = manifest.model_copy(update={"ood": spec, "onnx_sha256": sha256_file(onnx_path)})
    guarded.save(out_dir / MANIFEST_FILE)
    verify_package(onnx_path, guarded)
    return onnx_path, guarded


def _with_appearance(
    model: onnx.ModelProto, manifest: Manifest, images: np.ndarray, settings: GuardSettings
) -> onnx.ModelProto:
    from .appearance import to_onnx, train_network

    grey = grey_view(images, manifest)
    network = train_network(
        grey,
        epochs=settings.appearance_epochs,
        repeats=settings.appearance_repeats,
        seed=settings.seed,
    )
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return attach_network(model, to_onnx(network, opset), manifest.input, APPEARANCE_PREFIX)


def grey_view(images: np.ndarray, manifest: Manifest) -> np.ndarray:
    """What the appearance network reads of model-input images: ``INPUT_VIEW`` made grey."""
    spec = manifest.input
    channel_axis = 3 if spec.layout == "NHWC" else 1
    grey = images.mean(axis=channel_axis, dtype=np.float32)
    if spec.dtype == "float32":
        grey = (grey - spec.offset) / spec.scale
    height, width = view_size(spec)
    if (height, width) != (spec.height, spec.width):
        grey = grey.reshape(len(grey), height, 2, width, 2).mean(axis=(2, 4))
    return grey


def _method(cues: list[Cue], fit_images: int) -> str:
    names = ", ".join(cue.features.name for cue in cues)
    return (
        f"largest of {len(cues)} cues ({names}), each a Mahalanobis distance to {fit_images} "
        "training images (Ledoit-Wolf or principal-subspace whitening) or a -log probability, "
        "scaled to its own calibration quantile"
    )
