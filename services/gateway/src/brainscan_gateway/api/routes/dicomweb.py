"""``POST /dicomweb/studies[/{study}]``: a STOW-RS receiver, so a PACS can push studies.

Mounted only when ``GATEWAY_DICOMWEB_PUSH_URL`` is set: the SRs go there (docs/gateway.md,
"DICOMweb"). API key and rate limit as for predictions; the body limit is
``GATEWAY_DICOMWEB_MAX_BODY_BYTES`` (``middleware/upload_limit.py``).
"""

from __future__ import annotations

from typing import Annotated

from brainscan_servicekit import current_request_id
from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import JSONResponse

from ...dicomweb import multipart, stow
from ...dicomweb.receiver import Receiver
from ..deps import RateLimitedClientDep, SettingsDep
from ..responses import errors

PREFIX = "/dicomweb/studies"
router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])

_STOW_BODY = {
    "required": True,
    "content": {
        'multipart/related; type="application/dicom"': {
            "schema": {"type": "string", "format": "binary"},
        }
    },
    "description": "One DICOM instance (Part 10 file) per part, each with Content-Type "
    "application/dicom (PS3.18 10.5).",
}
_STOW_ANSWER = {
    "description": "PS3.18 JSON: ReferencedSOPSequence (classified or skipped) and "
    "FailedSOPSequence, each item with a private block saying why (docs/gateway.md, DICOMweb).",
    "content": {multipart.DICOM_JSON: {"schema": {"type": "object"}}},
}
_STUDY_UID = r"^[0-9]+(\.[0-9]+)*$"


async def get_receiver(request: Request) -> Receiver:
    return request.app.state.receiver


ReceiverDep = Annotated[Receiver, Depends(get_receiver)]

_ROUTE = {
    "openapi_extra": {"requestBody": _STOW_BODY},
    "response_class": JSONResponse,
    "responses": {
        200: _STOW_ANSWER,
        202: {**_STOW_ANSWER, "description": "Some instances failed (FailedSOPSequence)."},
        409: {**_STOW_ANSWER, "description": "Every instance failed (FailedSOPSequence)."},
        **errors(400, 401, 413, 415, 422, 429, 502, 503, 504),
    },
}


@router.post("/studies", **_ROUTE)
async def store_instances(
    request: Request, receiver: ReceiverDep, settings: SettingsDep, _client: RateLimitedClientDep
) -> JSONResponse:
    """STOW-RS: classify the MR instances pushed and store their SRs at the push server."""
    return await _store(request, receiver, settings.dicomweb_max_instances, None)


@router.post("/studies/{study}", **_ROUTE)
async def store_study_instances(
    request: Request,
    receiver: ReceiverDep,
    settings: SettingsDep,
    _client: RateLimitedClientDep,
    study: str = Path(
        pattern=_STUDY_UID, max_length=64, description="The StudyInstanceUID of every instance."
    ),
) -> JSONResponse:
    """STOW-RS to one study: instances of another study fail (FailureReason 0xA900)."""
    return await _store(request, receiver, settings.dicomweb_max_instances, study)


async def _store(
    request: Request, receiver: Receiver, max_instances: int, study: str | None
) -> JSONResponse:
    # The content type is checked before the body is read.
    boundary = multipart.boundary_of(request.headers.get("content-type"))
    parts = multipart.split(await request.body(), boundary, max_instances)
    outcomes = await receiver.receive(parts, study, current_request_id())
    status, body = stow.answer(outcomes)
    return JSONResponse(body, status_code=status, media_type=multipart.DICOM_JSON)
