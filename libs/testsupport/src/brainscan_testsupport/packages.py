"""Model packages (model.onnx + manifest.json) of the ``onnx_models`` classifiers.

``tiny_package``
    a ``tiny_classifier`` with class activation map weights, optionally guarded: what the
    services and the load test serve.
``quadrant_package``
    a ``quadrant_model`` of known quality: what training's evaluation and registry tests and
    model-sync's checks score.
``truncate_model``
    cuts a package's ONNX file in half and updates the manifest's sha256 to match: a package
    only the ONNX checker can tell is broken.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, InputSpec, Manifest, OutputSpec
from brainscan_manifest.verify import sha256_file

from brainscan_testsupport.guard import with_guard
from brainscan_testsupport.onnx_models import (
    CLASSES,
    PERFECT,
    QUADRANT_SIZE,
    quadrant_model,
    tiny_classifier,
)


def save_package(directory: Path, model: onnx.ModelProto, manifest: Manifest) -> Path:
    """``model`` and ``manifest`` as a package in ``directory`` (created if need be), the
    manifest's ``onnx_sha256`` that of the ONNX file written."""
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(directory / MODEL_FILE))
    rehash(directory, manifest)
    return directory


def rehash(directory: Path, manifest: Manifest | None = None) -> Manifest:
    """Write ``manifest`` (default: the package's own) with the sha256 of the package's ONNX
    file as it is now; returns it."""
    manifest = manifest or Manifest.load(directory / MANIFEST_FILE)
    manifest = manifest.model_copy(update={"onnx_sha256": sha256_file(directory / MODEL_FILE)})
    manifest.save(directory / MANIFEST_FILE)
    return manifest


def truncate_model(directory: Path) -> Path:
    """Cut the package's ONNX file in half and rehash it: the manifest still matches the file,
    so only the ONNX checker can tell."""
    model = directory / MODEL_FILE
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    rehash(directory)
    return directory


def tiny_package(
    directory: Path,
    *,
    name: str = "tiny",
    version: str | None = None,
    size: int = 8,
    dtype: str = "uint8",
    layout: str = "NHWC",
    num_outputs: int = len(CLASSES),
    with_cam: bool = True,
    cam_weights: list[list[float]] | None = None,
    guard_inputs: np.ndarray | None = None,
    false_alarm_rate: float = 0.1,
    manifest_fields: Mapping[str, object] | None = None,
    **model_options: object,
) -> Path:
    """A ``tiny_classifier`` package in ``directory``, its manifest naming the four classes.

    ``size``, ``dtype``, ``layout`` and ``num_outputs`` shape the model and its manifest (a
    float32 input is declared scaled by 1/255; ``num_outputs`` other than 4 makes a package
    whose model disagrees with its manifest); ``model_options`` (seed, features, map_size, ...)
    go to ``tiny_classifier``. ``cam_weights`` replaces the dense layer in the manifest (a
    broken package). ``guard_inputs`` (model inputs, as the manifest's input spec says) fits an
    out-of-distribution guard (``guard.with_guard``). ``manifest_fields`` adds to the manifest
    (description, default_threshold, metrics, ...).
    """
    model, dense, bias = tiny_classifier(
        size=size, dtype=dtype, layout=layout, num_outputs=num_outputs, **model_options
    )
    if num_outputs != len(CLASSES):  # keep the manifest itself valid
        dense = np.resize(dense, (dense.shape[0], len(CLASSES)))
        bias = np.resize(bias, (len(CLASSES),))
    cam = {
        "feature_map": "feature_map",
        "layout": layout,
        "weights": dense.tolist() if cam_weights is None else cam_weights,
        "bias": bias.tolist(),
    }
    manifest = Manifest.model_validate(
        {
            "name": name,
            "version": version,
            "classes": CLASSES,
            "input": {
                "name": "image",
                "height": size,
                "width": size,
                "layout": layout,
                "dtype": dtype,
                "scale": 1.0 if dtype == "uint8" else 1 / 255,
            },
            "outputs": {
                "probabilities": "probabilities",
                "activation_map": cam if with_cam else None,
            },
            "onnx_sha256": "0" * 64,  # set by save_package
            **(manifest_fields or {}),
        }
    )
    if guard_inputs is not None:
        model, manifest = with_guard(
            model, manifest, guard_inputs, false_alarm_rate=false_alarm_rate
        )
    return save_package(directory, model, manifest)


def quadrant_package(
    directory: Path,
    mapping: np.ndarray = PERFECT,
    *,
    name: str = "quadrants",
    classes: list[str] | None = None,
) -> tuple[Path, Manifest]:
    """A ``quadrant_model`` package in ``directory`` (nearest-neighbour resizing, so quadrant
    images keep their edges); returns the ONNX file's path and the manifest."""
    classes = classes or CLASSES
    manifest = Manifest(
        name=name,
        classes=classes,
        input=InputSpec(
            name="image", height=QUADRANT_SIZE, width=QUADRANT_SIZE, resize_filter="nearest"
        ),
        outputs=OutputSpec(probabilities="probabilities"),
        default_threshold=0.5,
        onnx_sha256="0" * 64,  # set by save_package
    )
    save_package(directory, quadrant_model(mapping, num_classes=len(classes)), manifest)
    return directory / MODEL_FILE, Manifest.load(directory / MANIFEST_FILE)
