"""Checks a model package must pass before anything serves or promotes it.

Training (registration, bring-your-own-model), model-sync (before publishing) and inference
(before swapping) all run the same checks, so a model refused in one place is refused everywhere.
Needs the ``onnx`` extra (onnx + onnxruntime).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .ood import OOD_DIGEST_KEY, ood_digest
from .schema import MANIFEST_FILE, MODEL_FILE, Manifest

if TYPE_CHECKING:
    import onnxruntime as ort

# How a caller wants its sessions built (threads, optimisation level): the smoke inference runs
# on one, and the caller gets it back to serve with.
SessionFactory = Callable[[Path], "ort.InferenceSession"]

_ONNX_DTYPES = {"uint8": 2, "float32": 1}  # onnx.TensorProto element types
_SUM_TOLERANCE = 1e-3


class PackageError(ValueError):
    """A model package failed a check; the message says which and why."""


@dataclass(frozen=True)
class ModelPackage:
    """A verified model: where its ONNX file is, its manifest, and the session the smoke
    inference ran on (None without one), ready to serve."""

    onnx_path: Path
    manifest: Manifest = field(repr=False)
    session: ort.InferenceSession | None = field(default=None, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        """The file's sha256: hashed once by the checks, and equal to the manifest's."""
        return self.manifest.onnx_sha256


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def load_package(directory: Path) -> tuple[Path, Manifest]:
    """Read ``manifest.json`` and locate ``model.onnx`` in a package directory."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    onnx_path = directory / MODEL_FILE
    if not manifest_path.is_file():
        raise PackageError(f"{manifest_path}: manifest missing")
    if not onnx_path.is_file():
        raise PackageError(f"{onnx_path}: ONNX model missing")
    try:
        manifest = Manifest.load(manifest_path)
    except ValueError as exc:
        raise PackageError(f"{manifest_path}: invalid manifest: {exc}") from exc
    return onnx_path, manifest


def verify_package(
    onnx_path: Path,
    manifest: Manifest,
    *,
    expected_sha256: str | None = None,
    expected_name: str | None = None,
    expected_version: str | None = None,
    smoke_inference: bool = True,
    session_factory: SessionFactory | None = None,
) -> ModelPackage:
    """Run every check; raise PackageError naming the first one that fails.

    ``expected_*`` are what the caller was told the package is (by the registry, a source
    directory or its own settings); a manifest without a version takes any version.
    """
    onnx_path = Path(onnx_path)
    if expected_name is not None and manifest.name != expected_name:
        raise PackageError(
            f"the manifest names model {manifest.name!r}, expected {expected_name!r}"
        )
    if (
        expected_version is not None
        and manifest.version is not None
        and manifest.version != expected_version
    ):
        raise PackageError(
            f"the manifest says version {manifest.version!r}, expected {expected_version!r}"
        )
    actual = sha256_file(onnx_path)
    if actual != manifest.onnx_sha256:
        raise PackageError(
            f"sha256 mismatch: file {actual[:12]}…, manifest says {manifest.onnx_sha256[:12]}…"
        )
    if expected_sha256 is not None and actual != expected_sha256:
        raise PackageError(
            f"sha256 mismatch: file {actual[:12]}…, registry says {expected_sha256[:12]}…"
        )
    check_signature(onnx_path, manifest)
    session = None
    if smoke_inference:
        session = _build_session(onnx_path, session_factory)
        run_smoke_inference(onnx_path, manifest, session=session)
    return ModelPackage(onnx_path=onnx_path, manifest=manifest, session=session)


def _build_session(onnx_path: Path, factory: SessionFactory | None) -> ort.InferenceSession:
    import onnxruntime as ort

    try:
        if factory is not None:
            return factory(onnx_path)
        return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise PackageError(f"onnxruntime cannot load the model: {exc}") from exc


def check_signature(onnx_path: Path, manifest: Manifest) -> None:
    """ONNX checker plus inputs/outputs matching the manifest (names, dtypes, shapes, classes)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises several unrelated types for a damaged file
        raise PackageError(f"ONNX checker failed: {exc}") from exc

    inputs = {i.name: i for i in model.graph.input}
    spec = manifest.input
    if spec.name not in inputs:
        raise PackageError(f"input {spec.name!r} not in model (has {sorted(inputs)})")
    tensor_type = inputs[spec.name].type.tensor_type
    if tensor_type.elem_type != _ONNX_DTYPES[spec.dtype]:
        raise PackageError(f"input {spec.name!r} dtype does not match manifest {spec.dtype}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    if dims[1:] != spec.shape()[1:]:
        raise PackageError(f"input shape {dims} does not match manifest {spec.shape()}")

    _check_ood_digest(model, manifest)
    outputs = {o.name: o for o in model.graph.output}
    wanted = [manifest.outputs.probabilities]
    if manifest.outputs.activation_map:
        wanted.append(manifest.outputs.activation_map.feature_map)
    if manifest.ood:
        wanted += [manifest.ood.score, manifest.ood.cues]
    for name in wanted:
        if name not in outputs:
            raise PackageError(f"output {name!r} not in model (has {sorted(outputs)})")
    if manifest.outputs.activation_map:
        _check_activation_map(outputs[manifest.outputs.activation_map.feature_map], manifest)
    if manifest.ood:
        _check_ood_outputs(outputs, manifest)
    prob_dims = outputs[manifest.outputs.probabilities].type.tensor_type.shape.dim
    n_out = prob_dims[-1].dim_value if prob_dims and prob_dims[-1].HasField("dim_value") else None
    if n_out is not None and n_out != len(manifest.classes):
        raise PackageError(
            f"model has {n_out} probability outputs, manifest lists {len(manifest.classes)} classes"
        )


def _check_ood_digest(model, manifest: Manifest) -> None:
    """The graph vouches for the manifest's ood section.

    The digest lives in the ONNX file, whose sha256 the registry holds: an edited threshold or
    reference, one copied from another model, or a section removed to silence the guard, all
    fail here.
    """
    built_with = {p.key: p.value for p in model.metadata_props}.get(OOD_DIGEST_KEY)
    ood = manifest.ood
    if ood is None:
        if built_with is not None:
            raise PackageError(
                "the model was built with an out-of-distribution guard, but the manifest has no "
                "ood section: restore the manifest the model was exported with"
            )
        return
    if built_with is None:
        raise PackageError(
            "the manifest has an ood section, but the model carries no guard digest "
            f"({OOD_DIGEST_KEY}): build the guard with `brainscan-train reference`"
        )
    if built_with != ood_digest(ood):
        raise PackageError(
            "the manifest's out-of-distribution reference does not match the one the model was "
            "built with (edited, or copied from another model)"
        )


def _check_ood_outputs(outputs, manifest: Manifest) -> None:
    """The guard's outputs have the shapes the gateway reads: [N] and [N, cues]."""
    ood = manifest.ood
    score_dims = outputs[ood.score].type.tensor_type.shape.dim
    cue_dims = outputs[ood.cues].type.tensor_type.shape.dim
    if len(score_dims) != 1 or len(cue_dims) != 2:
        raise PackageError(
            f"guard outputs must be {ood.score!r} [N] and {ood.cues!r} [N, cues], "
            f"got ranks {len(score_dims)} and {len(cue_dims)}"
        )
    cues = cue_dims[1].dim_value if cue_dims[1].HasField("dim_value") else None
    if cues is not None and cues != len(ood.cue_names):
        raise PackageError(
            f"the graph computes {cues} guard cues, the manifest names {len(ood.cue_names)}"
        )


def _check_activation_map(feature_output, manifest: Manifest) -> None:
    """The feature map must be [N, h, w, K] (or [N, K, h, w]) with K = rows of the CAM weights."""
    cam = manifest.outputs.activation_map
    dims = feature_output.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise PackageError(f"feature map {cam.feature_map!r} has rank {len(dims)}, expected 4")
    channel_dim = dims[3] if cam.layout == "NHWC" else dims[1]
    channels = channel_dim.dim_value if channel_dim.HasField("dim_value") else None
    if channels is not None and channels != len(cam.weights):
        raise PackageError(
            f"feature map has {channels} channels, "
            f"activation_map.weights has {len(cam.weights)} rows"
        )


def smoke_input(manifest: Manifest, batch: int = 2) -> np.ndarray:
    """A fixed, deterministic input batch: a gradient image and mid-grey."""
    spec = manifest.input
    h, w, c = spec.height, spec.width, spec.channels
    ramp = np.linspace(0, 255, h * w, dtype=np.float32).reshape(h, w, 1).repeat(c, axis=2)
    images = np.stack([ramp, np.full((h, w, c), 128.0, np.float32)][:batch])
    if spec.layout == "NCHW":
        images = images.transpose(0, 3, 1, 2)
    if spec.dtype == "uint8":
        return images.astype(np.uint8)
    return (images * spec.scale + spec.offset).astype(np.float32)


def run_smoke_inference(
    onnx_path: Path, manifest: Manifest, *, session: ort.InferenceSession | None = None
) -> np.ndarray:
    """Probabilities must be finite, in [0, 1], one per class, and sum to 1."""
    names = [manifest.outputs.probabilities]
    if manifest.ood:
        names += [manifest.ood.score, manifest.ood.cues]
    if session is None:
        session = _build_session(onnx_path, None)
    try:
        probs, *guard = session.run(names, {manifest.input.name: smoke_input(manifest)})
    except Exception as exc:  # onnxruntime raises its own exception types
        raise PackageError(f"smoke inference failed: {exc}") from exc
    if manifest.ood:
        score, cues = (np.asarray(g) for g in guard)
        if score.shape != (2,) or cues.shape != (2, len(manifest.ood.cue_names)):
            raise PackageError(
                f"smoke inference: guard outputs have shapes {score.shape} and {cues.shape}"
            )
        if not (np.all(np.isfinite(score)) and np.all(np.isfinite(cues))):
            raise PackageError("smoke inference: the out-of-distribution score is not finite")
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[1] != len(manifest.classes):
        raise PackageError(f"smoke inference: probabilities have shape {probs.shape}")
    if not np.all(np.isfinite(probs)):
        raise PackageError("smoke inference: non-finite probabilities")
    if np.any(probs < -1e-6) or np.any(np.abs(probs.sum(axis=1) - 1.0) > _SUM_TOLERANCE):
        raise PackageError("smoke inference: outputs are not probabilities (do not sum to 1)")
    return probs
