"""One prediction end to end: decode, preprocess by the manifest, infer, threshold, explain.

Knows nothing of HTTP; the route hands it the uploaded bytes and maps the ``PredictionResult``
it gives back to the response schema.
Pixel work (decode, preprocess, overlay and preview) runs in worker threads, at most
``max_concurrent_image_work`` at once: the event loop keeps answering (health checks too) while
a large image decodes, and memory is bounded however many uploads arrive together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from anyio import CapacityLimiter, to_thread
from brainscan_manifest import InputSpec, Manifest
from brainscan_manifest.preprocess import input_intensity
from brainscan_servicekit import get_logger
from brainscan_v2protocol import InferResponse
from PIL import Image

from ..errors import ErrorCode, GatewayError
from ..imaging import overlay
from ..imaging.decoding import DecodedImage, decode_upload
from ..imaging.frames import FrameChoice
from ..imaging.limits import DecodeLimits
from ..imaging.upload_format import UploadFormat
from ..metrics import GatewayMetrics
from ..upstream.client import (
    InferenceClient,
    ModelNotServed,
)
from ..upstream.served_model import ServedModel
from . import outputs
from .canary import CHALLENGER_ROLE, PRODUCTION_ROLE, Canary
from .distribution_check import DistributionCheck, check_distribution
from .monitoring import DriftMonitor
from .preparation import PreparedImage, prepare_for
from .shadow import ChampionAnswer, ShadowMirror
from .thresholds import ThresholdPolicy

_log = get_logger("brainscan.prediction")


@dataclass(frozen=True)
class PredictionOptions:
    explain: bool = False
    preview: bool = False
    frame: int | None = None
    """1-based frame of a multi-frame DICOM to classify; None: the middle one."""


@dataclass(frozen=True)
class PredictionTimings:
    """Where one prediction's time went, in seconds."""

    decode: float
    """Checking, decoding and preprocessing the upload."""
    inference: float
    """The call to the inference service."""
    explain: float
    """Drawing the activation-map overlay and the preview."""
    total: float


@dataclass(frozen=True)
class PredictionResult:
    """One answered prediction, as the domain sees it."""

    label: str
    confidence: float
    uncertain: bool
    """Below the class threshold, or not assessed: a person should review the image."""
    threshold: float
    assessed: bool
    """False when the image is out of distribution: the label is then not a finding."""
    check: DistributionCheck
    probabilities: dict[str, float]
    """Per class, in model order."""
    model_name: str
    model_version: str | None
    model_role: str
    """production, or challenger for a canary answer."""
    source_format: UploadFormat
    size: tuple[int, int]
    """Width and height of the decoded upload."""
    timings: PredictionTimings
    overlay_png: str | None = None
    """With explain: the activation map for ``label`` over the image (PNG, base64)."""
    preview_png: str | None = None
    """With preview: the decoded image (PNG, base64)."""
    frame: FrameChoice | None = None
    """The frame classified, for a multi-frame DICOM (from the decoder, passed through)."""
    image: Image.Image | None = None
    """The decoded picture that was classified (8-bit L or RGB), for feedback; not answered."""
    classes: tuple[str, ...] = ()
    """The classes of the model that answered, in its order."""


class Predictor:
    """Turns uploaded bytes into a PredictionResult, with the served model's own preprocessing."""

    def __init__(
        self,
        client: InferenceClient,
        served_model: ServedModel,
        limits: DecodeLimits,
        default_threshold: float | None,
        class_thresholds: dict[str, float],
        preview_max_side: int,
        metrics: GatewayMetrics,
        max_concurrent_image_work: int,
        drift: DriftMonitor,
        shadow: ShadowMirror | None = None,
        canary: Canary | None = None,
    ) -> None:
        self.client = client
        self.served_model = served_model
        self.limits = limits
        self.default_threshold = default_threshold
        self.class_thresholds = class_thresholds
        self.preview_max_side = preview_max_side
        self.metrics = metrics
        self.drift = drift
        self.shadow = shadow
        """Where answered images are offered for comparison with the challenger (None: off)."""
        self.canary = canary
        """Answers a share of the predictions with the challenger (None: off)."""
        # Its own limiter, not anyio's shared 40-thread default: decodes wait here for a slot.
        self.image_work_slots = CapacityLimiter(max_concurrent_image_work)
        self.in_flight = 0
        """Predictions being answered right now (the shadow mirror yields to them)."""

    def thresholds(self, manifest: Manifest) -> ThresholdPolicy:
        return ThresholdPolicy.for_model(manifest, self.default_threshold, self.class_thresholds)

    async def predict(
        self, data: bytes, options: PredictionOptions, request_id: str
    ) -> PredictionResult:
        self.in_flight += 1
        try:
            return await self._predict(data, options, request_id)
        finally:
            self.in_flight -= 1

    async def _predict(
        self, data: bytes, options: PredictionOptions, request_id: str
    ) -> PredictionResult:
        started = time.perf_counter()
        manifest = await self.served_model.get(request_id)
        if options.explain and manifest.outputs.activation_map is None:
            raise GatewayError(
                ErrorCode.EXPLANATION_UNAVAILABLE,
                f"model {manifest.name} version {manifest.version} carries no activation-map "
                "data, so it cannot explain its predictions: ask without explain=true",
                422,
            )
        prepared = await self._image_work(self._prepare, data, manifest.input, options.frame)
        decoded = prepared.decoded
        decode_seconds = time.perf_counter() - started

        inference_started = time.perf_counter()
        role = PRODUCTION_ROLE
        answered = await self._canary_answer(prepared, options.explain, request_id)
        if answered is not None:
            manifest, prepared, result = answered
            role = CHALLENGER_ROLE
        else:
            manifest, prepared, result = await self._infer(
                prepared, manifest, options.explain, request_id
            )
        inference_seconds = time.perf_counter() - inference_started

        probabilities = outputs.probabilities(result, manifest)
        index = int(np.argmax(probabilities))
        label = manifest.classes[index]
        confidence = float(probabilities[index])
        policy = self.thresholds(manifest)
        threshold = policy.threshold_for(label)
        check = check_distribution(result, manifest, decoded.size)
        # An image unlike the training images gets no finding, however confident the model is.
        assessed = check.in_distribution is not False
        uncertain = policy.is_uncertain(label, confidence) or not assessed

        explain_started = time.perf_counter()
        overlay_png = None
        preview_png = None
        if options.explain:
            cam = outputs.activation_map(result)
            overlay_png = await self._image_work(self._overlay_png, decoded, cam)
        if options.preview:
            preview_png = await self._image_work(self._preview_png, decoded)
        explain_seconds = time.perf_counter() - explain_started
        total_seconds = time.perf_counter() - started

        version = result.model_version or manifest.version
        self._record(label, confidence, uncertain, version, decode_seconds, inference_seconds)
        self.metrics.ood_checks.labels(version or "", check.result).inc()
        intensity = float(input_intensity(prepared.tensor, prepared.spec)[0])
        self.drift.observe(manifest, version or "", index, confidence, intensity, check)
        if self.shadow is not None and version and role == PRODUCTION_ROLE:
            champion = ChampionAnswer(version, label, confidence, check, inference_seconds)
            self.shadow.offer(prepared, champion, request_id)
        _log.info(
            "prediction",
            **{
                "event.action": "predict",
                "event.outcome": "success",
                "event.duration": int(total_seconds * 1e9),
                "prediction.label": label,
                "prediction.confidence": round(confidence, 4),
                "prediction.below_threshold": uncertain,
                "prediction.threshold": threshold,
                "prediction.assessed": assessed,
                **_check_fields(check),
                "prediction.explain": options.explain,
                "prediction.image_format": decoded.source_format.value,
                "prediction.latency.decode_ms": round(decode_seconds * 1000, 2),
                "prediction.latency.inference_ms": round(inference_seconds * 1000, 2),
                "prediction.latency.total_ms": round(total_seconds * 1000, 2),
                "model.name": manifest.name,
                "model.version": version,
                "brainscan.model_role": role,
            },
        )
        return PredictionResult(
            label=label,
            confidence=confidence,
            uncertain=uncertain,
            threshold=threshold,
            assessed=assessed,
            check=check,
            probabilities={
                name: float(p) for name, p in zip(manifest.classes, probabilities, strict=True)
            },
            model_name=manifest.name,
            model_version=version,
            model_role=role,
            source_format=decoded.source_format,
            size=decoded.size,
            timings=PredictionTimings(
                decode=decode_seconds,
                inference=inference_seconds,
                explain=explain_seconds,
                total=total_seconds,
            ),
            overlay_png=overlay_png,
            preview_png=preview_png,
            frame=decoded.frame,
            image=decoded.image,
            classes=tuple(manifest.classes),
        )

    async def _canary_answer(
        self, prepared: PreparedImage, explain: bool, request_id: str
    ) -> tuple[Manifest, PreparedImage, InferResponse] | None:
        """The challenger's answer, for the canary's share of requests (None otherwise, and
        whenever the challenger cannot answer: the served model does)."""
        challenger = self.canary.pick(explain) if self.canary is not None else None
        if challenger is None:
            return None
        answered = await self.canary.answer(
            challenger, prepared, explain, request_id, self._image_work
        )
        return None if answered is None else (challenger, *answered)

    async def _image_work(self, function, *args):
        """Run CPU-heavy pixel work in a worker thread, within the image-work slots."""
        return await to_thread.run_sync(function, *args, limiter=self.image_work_slots)

    def _prepare(self, data: bytes, spec: InputSpec, frame: int | None = None) -> PreparedImage:
        return prepare_for(decode_upload(data, self.limits, frame), spec)

    async def _infer(
        self, prepared: PreparedImage, manifest: Manifest, explain: bool, request_id: str
    ) -> tuple[Manifest, PreparedImage, InferResponse]:
        """Call the exact version the manifest describes; after a swap, re-read and retry once."""
        for attempt in range(2):
            if manifest.input != prepared.spec:  # the new version preprocesses differently
                prepared = await self._image_work(prepare_for, prepared.decoded, manifest.input)
            tensor = prepared.tensor
            try:
                result = await self.client.infer(
                    tensor,
                    manifest.input.name,
                    outputs.requested(manifest, explain),
                    request_id=request_id,
                    version=manifest.version,
                )
                return manifest, prepared, result
            except ModelNotServed:
                if attempt == 1:
                    raise
                manifest = await self.served_model.refresh(request_id)
                if explain and manifest.outputs.activation_map is None:
                    raise GatewayError(
                        ErrorCode.EXPLANATION_UNAVAILABLE,
                        "the model now served carries no activation-map data: ask without "
                        "explain=true",
                        422,
                    ) from None
        raise AssertionError("unreachable")

    def _overlay_png(self, decoded: DecodedImage, cam: np.ndarray) -> str:
        image = overlay.overlay(decoded.image, cam, self.preview_max_side)
        return overlay.png_base64(image)

    def _preview_png(self, decoded: DecodedImage) -> str:
        image = overlay.display_copy(decoded.image, self.preview_max_side)
        return overlay.png_base64(image)

    def _record(self, label, confidence, uncertain, version, decode_s, inference_s) -> None:
        self.metrics.predictions.labels(label, version or "").inc()
        self.metrics.confidence.labels(version or "").observe(confidence)
        if uncertain:
            self.metrics.uncertain.labels(label).inc()
        self.metrics.phase_duration.labels("decode").observe(decode_s)
        self.metrics.phase_duration.labels("inference").observe(inference_s)


def _check_fields(check: DistributionCheck) -> dict[str, object]:
    """Log fields of the guard's verdict; none of them when the model has no guard."""
    if check.in_distribution is None:
        return {}
    return {
        "prediction.in_distribution": check.in_distribution,
        "prediction.ood_score": round(check.score, 4),
        "prediction.ood_threshold": round(check.threshold, 4),
        "prediction.ood_reason": "none" if check.in_distribution else check.cue,
    }
