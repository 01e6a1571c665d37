"""``GET /api/v1/model``: what is being served, its classes and the thresholds applied."""

from __future__ import annotations

from brainscan_servicekit import current_request_id
from fastapi import APIRouter

from ..deps import ClientDep, PredictorDep, ServedModelDep, SettingsDep, ShadowDep
from ..responses import errors
from ..schemas import (
    FeedbackInfo,
    InputInfo,
    ModelInfo,
    OodInfo,
    ShadowInfo,
    Thresholds,
    UploadLimits,
)

router = APIRouter(prefix="/api/v1", tags=["model"])


@router.get("/model", response_model=ModelInfo, responses=errors(401, 502, 503, 504))
async def model_info(
    served_model: ServedModelDep,
    predictor: PredictorDep,
    settings: SettingsDep,
    shadow: ShadowDep,
    _client: ClientDep,
) -> ModelInfo:
    """The served model: name, version, classes, input, thresholds, test metrics, and the
    challenger in shadow with its agreement so far."""
    manifest = await served_model.get(current_request_id())
    policy = predictor.thresholds(manifest)
    spec = manifest.input
    return ModelInfo(
        name=manifest.name,
        version=manifest.version,
        description=manifest.description,
        classes=list(manifest.classes),
        input=InputInfo(
            height=spec.height,
            width=spec.width,
            channels=spec.channels,
            color=spec.color,
            layout=spec.layout,
            dtype=spec.dtype,
            resize_filter=spec.resize_filter,
        ),
        thresholds=Thresholds(
            default=policy.default,
            per_class=policy.per_class,
            ignored_overrides=list(policy.ignored),
        ),
        explain_available=manifest.outputs.activation_map is not None,
        ood=_ood_info(manifest),
        metrics=dict(manifest.metrics),
        uploads=UploadLimits(
            formats=["jpeg", "png", "dicom"],
            max_upload_bytes=settings.max_upload_bytes,
            max_image_pixels=settings.max_image_pixels,
            min_image_side=settings.min_image_side,
        ),
        feedback=FeedbackInfo(
            enabled=settings.feedback_dir is not None,
            window_seconds=settings.feedback_window_seconds if settings.feedback_dir else None,
        ),
        shadow=_shadow_info(shadow),
    )


def _shadow_info(shadow) -> ShadowInfo | None:
    report = shadow.report() if shadow is not None else None
    return ShadowInfo(**report) if report is not None else None


def _ood_info(manifest) -> OodInfo:
    ood = manifest.ood
    if ood is None:
        return OodInfo(available=False)
    return OodInfo(
        available=True,
        threshold=ood.threshold,
        false_alarm_rate=ood.false_alarm_rate,
        cues={cue.name: cue.description for cue in ood.cue_names},
        method=ood.method,
        metrics=dict(ood.metrics),
    )
