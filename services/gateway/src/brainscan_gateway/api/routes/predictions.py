"""``POST /api/v1/predictions``: classify one uploaded image (multipart field ``file``)."""

from __future__ import annotations

import time
from typing import Literal

from brainscan_servicekit import current_request_id
from fastapi import APIRouter, Query, Request
from starlette.datastructures import UploadFile
from starlette.responses import Response

from ...errors import BadUpload, ErrorCode
from ...feedback.window import Answered
from ...prediction.predictor import PredictionOptions, PredictionResult
from ...results import dicom_sr
from ..deps import FeedbackDep, PredictorDep, RateLimitedClientDep, SettingsDep
from ..responses import errors
from ..schemas import (
    ActivationMap,
    FrameInfo,
    ImageInfo,
    ModelRef,
    OodCheck,
    Prediction,
    Timings,
)

router = APIRouter(prefix="/api/v1", tags=["predictions"])
PATH = "/api/v1/predictions"

_MULTIPART_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "The image: JPEG, PNG (8/16-bit) or DICOM (any common "
                        "transfer syntax, single- or multi-frame).",
                    },
                    "frame": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "As the frame query parameter (either may be used).",
                    },
                },
            }
        }
    },
}


async def read_upload(request: Request) -> tuple[bytes, int | None]:
    """The bytes of the multipart ``file`` field and the optional ``frame`` form field (the body
    is parsed only after the checks)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise BadUpload(
            ErrorCode.MISSING_FILE,
            "send the image as multipart/form-data with a field named 'file'",
        )
    # Checks like the API key and rate limit ran before this line: no body is read for them.
    form = await request.form(max_files=1, max_fields=8)
    try:
        upload = form.get("file")
        if upload is None:
            raise BadUpload(ErrorCode.MISSING_FILE, "the form has no field named 'file'")
        if not isinstance(upload, UploadFile):
            raise BadUpload(
                ErrorCode.MISSING_FILE,
                "the 'file' field holds text, not a file: attach the image as a file",
            )
        data = await upload.read()
        frame = _form_frame(form.get("frame"))
    finally:
        await form.close()
    if not data:
        raise BadUpload(ErrorCode.EMPTY_FILE, "the uploaded file is empty (0 bytes)")
    return data, frame


def _form_frame(value: object) -> int | None:
    if value is None:
        return None
    try:
        frame = int(str(value).strip()) if isinstance(value, str) else None
    except ValueError:
        frame = None
    if frame is None or frame < 1:
        raise BadUpload(
            ErrorCode.INVALID_REQUEST,
            "the form field 'frame' must be a whole number from 1 (DICOM numbers frames from 1)",
        )
    return frame


def _one_frame(query: int | None, form: int | None) -> int | None:
    if query is not None and form is not None and query != form:
        raise BadUpload(
            ErrorCode.INVALID_REQUEST,
            f"frame is {query} in the query but {form} in the form: send it once",
        )
    return query if query is not None else form


@router.post(
    "/predictions",
    response_model=Prediction,
    openapi_extra={"requestBody": _MULTIPART_BODY},
    responses={
        200: {
            "description": "The prediction: JSON, or with Accept: application/dicom or "
            "result=dicom-sr (DICOM uploads only) a DICOM Comprehensive 3D SR (TID 1500).",
            "content": {dicom_sr.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
        **errors(400, 401, 413, 415, 422, 429, 502, 503, 504),
    },
)
async def create_prediction(
    request: Request,
    predictor: PredictorDep,
    settings: SettingsDep,
    feedback: FeedbackDep,
    client: RateLimitedClientDep,
    explain: bool = Query(
        False, description="Also return the class activation map overlay (PNG, base64)."
    ),
    preview: bool = Query(
        False, description="Also return the decoded image as PNG (base64), e.g. for DICOM."
    ),
    frame: int | None = Query(
        None,
        ge=1,
        description="The frame of a multi-frame DICOM to classify, numbered from 1 as DICOM "
        "does (also accepted as a form field); default: the middle frame, (count + 1) // 2.",
    ),
    result: Literal["json", "dicom-sr"] | None = Query(
        None,
        description="The answer's form: json, or dicom-sr (a DICOM SR, for a DICOM upload). "
        "Default: by the Accept header (application/dicom: the SR), else JSON.",
    ),
) -> Prediction | Response:
    """Classify one brain MRI slice; flags predictions below the confidence threshold."""
    data, form_frame = await read_upload(request)
    frame = _one_frame(frame, form_frame)
    request_id = current_request_id()
    if dicom_sr.wants_sr(request.headers.get("accept"), result):
        # Refused before inference when no SR can be made (docs/gateway.md, "Results as DICOM
        # SR"); explain and preview belong to the JSON answer. A tool asking for an SR is not a
        # reviewer on the page: nothing is held for feedback.
        source = await dicom_sr.prepare(data)
        sr = await dicom_sr.predict_sr(
            predictor, data, source, frame, request_id, settings.sr_series_description
        )
        return dicom_sr.sr_response(sr)
    options = PredictionOptions(explain=explain, preview=preview, frame=frame)
    answer = await predictor.predict(data, options, request_id)
    if feedback is not None and answer.image is not None:
        feedback.hold(request_id, answered_for_feedback(answer, client))
    return to_response(answer, request_id)


def answered_for_feedback(result: PredictionResult, client: str) -> Answered:
    """What feedback on this answer needs: the decoded pixels and the model's answer."""
    return Answered(
        client=client,
        image=result.image,
        model_name=result.model_name,
        model_version=result.model_version,
        model_role=result.model_role,
        label=result.label,
        confidence=result.confidence,
        classes=result.classes,
        assessed=result.assessed,
        answered_at=time.time(),
    )


def to_response(result: PredictionResult, request_id: str) -> Prediction:
    """The predictor's result as the API answers it (times in milliseconds)."""
    check = result.check
    timings = result.timings
    width, height = result.size
    return Prediction(
        request_id=request_id,
        label=result.label,
        confidence=result.confidence,
        uncertain=result.uncertain,
        threshold=result.threshold,
        in_distribution=check.in_distribution,
        assessed=result.assessed,
        ood=OodCheck(
            score=check.score, threshold=check.threshold, cue=check.cue, reason=check.reason
        ),
        probabilities=result.probabilities,
        model=ModelRef(
            name=result.model_name, version=result.model_version, role=result.model_role
        ),
        image=ImageInfo(format=result.source_format.value, width=width, height=height),
        timings=Timings(
            decode_ms=_ms(timings.decode),
            inference_ms=_ms(timings.inference),
            explain_ms=_ms(timings.explain),
            total_ms=_ms(timings.total),
        ),
        activation_map=(
            None
            if result.overlay_png is None
            else ActivationMap(label=result.label, overlay_png=result.overlay_png)
        ),
        preview_png=result.preview_png,
        frame=(
            None
            if result.frame is None
            else FrameInfo(index=result.frame.index, count=result.frame.count)
        ),
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
