"""`brainscan-train reference`: the guard for a model that came from elsewhere.

A folder of the images the model is meant for (any layout, JPEG or PNG) is split at random:
60 % fit the cues, 25 % calibrate the threshold, 15 % are held out to measure the false-alarm
rate the calibration promised. The corpus is scored too. The result is a new package (the
model's graph with the guard appended, its manifest with the ``ood`` section), ready for
``brainscan-train register-external``; the model's own outputs are unchanged (checked).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_manifest.decode import upright_eight_bit
from brainscan_manifest.guard_fit import run_graph
from brainscan_manifest.preprocess import to_input_array
from brainscan_manifest.verify import PackageError, verify_package
from PIL import Image

from .build import GuardSettings, fit_package_guard, write_guarded_package
from .corpus import build_corpus
from .cues import generic_cues, mobilenet_cues
from .evaluation import evaluate_guard, with_metrics

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
MIN_IMAGES = 40
"""Fewer images than this cannot fit and calibrate anything worth serving."""
SHARES = (0.6, 0.25)
"""Fitting and calibration shares; the rest is held out."""
PARITY_TOLERANCE = 1e-5


class GuardInputError(ValueError):
    """The reference cannot be computed from what was given; the message says why."""


@dataclass(frozen=True)
class ExternalGuard:
    onnx_path: Path
    manifest: Manifest
    metrics: dict[str, float]
    missed: list[str]


def load_images(directory: Path, manifest: Manifest) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Every JPEG/PNG under ``directory``, decoded and resized as the gateway does, and the
    size of each as uploaded."""
    files = sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < MIN_IMAGES:
        raise GuardInputError(
            f"{directory} holds {len(files)} JPEG/PNG images; the reference needs at least "
            f"{MIN_IMAGES} (thousands for a threshold that holds its false-alarm rate)"
        )
    images, sizes = [], []
    for path in files:
        try:
            with Image.open(path) as image:
                image.load()
                upright = upright_eight_bit(image)
        except OSError as exc:
            raise GuardInputError(f"{path}: not a readable image ({exc})") from None
        images.append(to_input_array(upright, manifest.input))
        sizes.append(upright.size)
    return np.stack(images), sizes


def guard_external(
    onnx_path: Path,
    manifest_path: Path,
    images_dir: Path,
    out_dir: Path,
    settings: GuardSettings,
    *,
    taps: list[str] | None = None,
    plan: str = "generic",
) -> ExternalGuard:
    """Fit, calibrate, check and write the guarded package of an external model."""
    manifest = Manifest.load(manifest_path)
    if manifest.ood is not None:
        raise GuardInputError("the manifest already has an ood section: start from the plain model")
    verify_package(onnx_path, manifest)
    images, sizes = load_images(images_dir, manifest)
    order = np.random.default_rng(settings.seed).permutation(len(images))
    cuts = (np.cumsum(SHARES) * len(images)).astype(int)
    fit, calibration, held_out = (images[part] for part in np.split(order, cuts))

    def cue_plan(model, manifest):
        if plan == "mobilenetv2":
            return mobilenet_cues(model, manifest)
        return generic_cues(model, manifest, taps)

    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        shutil.copyfile(onnx_path, staged / MODEL_FILE)
        manifest.save(staged / MANIFEST_FILE)
        plain, fitted = fit_package_guard(
            staged,
            cue_plan,
            fit,
            calibration,
            settings,
            split=f"{len(calibration)} of the {len(images)} images in {Path(images_dir).name}",
            fit_sizes=[sizes[i] for i in order[: cuts[0]]],
        )
    held_out_sizes = [sizes[i] for i in order[cuts[1] :]]
    report = evaluate_guard(
        fitted.model, plain, fitted.spec, held_out, build_corpus(settings.seed), held_out_sizes
    )
    _check_outputs_unchanged(onnx.load(str(onnx_path)), fitted.model, plain, held_out)
    metrics = report.metrics()
    spec = with_metrics(fitted.spec, metrics)
    path, guarded = write_guarded_package(out_dir, fitted.model, plain, spec)
    if len(calibration) < 1000:
        log.warning(
            "only %d calibration images: the false-alarm rate of the threshold is uncertain",
            len(calibration),
        )
    return ExternalGuard(path, guarded, metrics, report.missed)


def _check_outputs_unchanged(original, guarded, manifest: Manifest, images: np.ndarray) -> None:
    """The guard only adds outputs: the model's probabilities must be bit-for-bit the same."""
    name = manifest.outputs.probabilities
    before = run_graph(original, manifest.input.name, images, [name])[name]
    after = run_graph(guarded, manifest.input.name, images, [name])[name]
    if np.max(np.abs(before - after), initial=0.0) > PARITY_TOLERANCE:
        raise PackageError("appending the guard changed the model's probabilities")
