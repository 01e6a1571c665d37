"""``POST /v1/webhooks/mlflow``: MLflow's signed alias events, each a hint to check the registry.

The event itself is never trusted for *what* to serve: an accepted alias event only makes the
model's task read the alias from MLflow now, so a forged or reordered event cannot pick a version.
"""

from __future__ import annotations

import json

from brainscan_servicekit import get_logger
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ...errors import ErrorCode, ModelSyncError
from ...history import Trigger
from ...webhook_signature import DELIVERY_ID_HEADER, WebhookRejected
from ..deps import MetricsDep, SettingsDep, SyncerDep, VerifierDep

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
_log = get_logger(__name__)
_MAX_BODY = 64 * 1024
_ALIAS_ENTITY = "model_version_alias"
_ALIAS_ACTIONS = {"created", "deleted"}


@router.post(
    "/mlflow",
    responses={
        202: {"description": "An alias event of a followed model: a registry check is queued."},
        401: {"description": "Missing or wrong signature, stale timestamp, or a replay."},
        404: {"description": "Webhooks are off (no secret configured)."},
    },
)
async def mlflow_webhook(
    request: Request,
    verifier: VerifierDep,
    syncer: SyncerDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> JSONResponse:
    """Receive an MLflow registry webhook (HMAC-verified); alias events trigger a sync."""
    if verifier is None:
        raise ModelSyncError(
            ErrorCode.WEBHOOKS_DISABLED,
            "webhooks are off on this model-sync (MODELSYNC_WEBHOOK_SECRET is unset)",
            404,
        )
    body = await request.body()
    if len(body) > _MAX_BODY:
        metrics.webhooks.labels("rejected").inc()
        raise ModelSyncError(ErrorCode.WEBHOOK_PAYLOAD, f"webhook body over {_MAX_BODY} bytes", 413)
    try:
        delivery_id = verifier.verify(request.headers, body)
    except WebhookRejected as exc:
        metrics.webhooks.labels("rejected").inc()
        _log.warning(
            "webhook rejected",
            **{
                "event.outcome": "failure",
                "error.message": str(exc),
                "brainscan.webhook.delivery_id": request.headers.get(DELIVERY_ID_HEADER, "")[:64],
            },
        )
        raise ModelSyncError(ErrorCode.WEBHOOK_SIGNATURE, f"webhook rejected: {exc}", 401) from None
    verifier.remember(delivery_id)

    try:
        payload = json.loads(body)
        entity, action, data = payload["entity"], payload["action"], payload["data"]
        if not isinstance(data, dict):
            raise TypeError("data is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        metrics.webhooks.labels("rejected").inc()
        raise ModelSyncError(
            ErrorCode.WEBHOOK_PAYLOAD,
            f"webhook body is not an MLflow event ({{entity, action, data}}): {exc}",
            400,
        ) from None

    name, alias = data.get("name"), data.get("alias")
    ignored = None
    if entity != _ALIAS_ENTITY or action not in _ALIAS_ACTIONS:
        ignored = f"event {entity}.{action} does not change what is served"
    elif name not in syncer.publications:
        ignored = f"model {name!r} is not followed"
    elif alias not in (followed := [a for a in (settings.alias, settings.challenger_alias) if a]):
        ignored = f"alias {alias!r} is not a followed alias ({', '.join(followed)})"
    if ignored is not None:
        metrics.webhooks.labels("ignored").inc()
        return JSONResponse({"accepted": True, "delivery_id": delivery_id, "ignored": ignored})

    syncer.request_sync(name, Trigger.WEBHOOK)
    metrics.webhooks.labels("accepted").inc()
    _log.info(
        "webhook accepted; checking the registry",
        **{
            "brainscan.webhook.delivery_id": delivery_id,
            "event.action": f"{entity}.{action}",
            "model.name": name,
        },
    )
    return JSONResponse(
        {"accepted": True, "delivery_id": delivery_id, "model": name, "sync": "scheduled"},
        status_code=202,
    )
