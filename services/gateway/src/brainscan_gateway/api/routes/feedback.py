"""``POST /api/v1/predictions/{request_id}/feedback``: a reviewer confirms or corrects an answer."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ...errors import ErrorCode, GatewayError
from ..deps import FeedbackDep, RateLimitedClientDep
from ..responses import errors
from ..schemas import FeedbackIn, FeedbackReceipt, ModelRef

router = APIRouter(prefix="/api/v1", tags=["feedback"])
PATH = re.compile(r"^/api/v1/predictions/[^/]+/feedback$")
MAX_BODY_BYTES = 16 * 1024
"""The JSON body: a label and a comment of at most 2,000 characters fit many times over."""


_JSON_BODY = {
    "required": True,
    "content": {"application/json": {"schema": FeedbackIn.model_json_schema()}},
}


async def read_body(request: Request) -> FeedbackIn:
    """The JSON body, read here rather than by FastAPI: only after the access checks, and so
    that the size limit's 413 is answered as such (FastAPI's body parsing would make it 400)."""
    data = await request.body()
    try:
        return FeedbackIn.model_validate_json(data)
    except ValidationError as error:
        # As FastAPI would locate them ("body parameter 'label': ..."); never the input itself.
        problems = [
            {"loc": ("body", *problem["loc"]), "msg": problem["msg"], "type": problem["type"]}
            for problem in error.errors(include_url=False, include_input=False)
        ]
        raise RequestValidationError(problems) from None


@router.post(
    "/predictions/{request_id}/feedback",
    status_code=201,
    openapi_extra={"requestBody": _JSON_BODY},
    response_model=FeedbackReceipt,
    responses=errors(401, 404, 409, 410, 413, 422, 429, 503),
)
async def give_feedback(
    request_id: Annotated[
        str,
        Path(
            pattern=r"^[A-Za-z0-9._:-]{1,128}$",
            description="The request_id of the answer (also its X-Request-ID header).",
        ),
    ],
    request: Request,
    feedback: FeedbackDep,
    client: RateLimitedClientDep,
) -> FeedbackReceipt:
    """Confirm the model's answer (send its own label) or correct it (send the right class).

    The gateway then stores the decoded image (pixels only, as PNG) with the model's answer and
    your label. Possible only within the feedback window after the answer, from the client that
    asked for it, once per prediction.
    """
    if feedback is None:
        raise GatewayError(
            ErrorCode.FEEDBACK_DISABLED,
            "feedback is not enabled on this server (GATEWAY_FEEDBACK_DIR is not set)",
            404,
        )
    body = await read_body(request)
    comment = body.comment.strip() if body.comment else None
    record = await feedback.give(request_id, client, body.label, comment or None)
    return FeedbackReceipt(
        request_id=request_id,
        label=record.label,
        model_label=record.model_label,
        confirmation=record.confirmation,
        image_sha256=record.sha256,
        model=ModelRef(
            name=record.model_name, version=record.model_version, role=record.model_role
        ),
    )
