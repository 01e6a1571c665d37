"""Liveness and readiness, with the registry's and the webhook's state in the details."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import SettingsDep, SyncerDep, WebhookDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def live() -> dict[str, bool]:
    """200 while the process serves HTTP."""
    return {"live": True}


@router.get("/readyz")
async def ready(syncer: SyncerDep, webhook: WebhookDep, settings: SettingsDep) -> JSONResponse:
    """200 once every followed model has a verified version to serve (from MLflow or the cache),
    503 before; `status` is `degraded` when MLflow is unreachable or the registry's choice is not
    what is served."""
    now = time.time()
    registry = syncer.registry_health
    models: dict[str, dict[str, object]] = {}
    for name, publication in syncer.publications.items():
        current = publication.current
        models[name] = {
            "version": current.version if current else None,
            "sha256": current.sha256 if current else None,
            "degraded_reason": publication.degraded_reason,
            "last_success_at": registry.last_success[name],
            "sync_lag_seconds": round(registry.sync_lag(name, now), 3),
        }
    degraded = registry.reachable is False or any(
        p.degraded_reason for p in syncer.publications.values()
    )
    is_ready = syncer.ready
    body = {
        "ready": is_ready,
        "status": ("degraded" if degraded else "ok") if is_ready else "not_ready",
        "models": models,
        "registry": {
            "url": settings.mlflow_tracking_uri,
            "reachable": registry.reachable,
            "last_error": registry.last_error,
            "last_error_at": registry.last_error_at,
        },
        "webhook": {"state": str(webhook.status.state), "detail": webhook.status.detail},
    }
    headers = None if is_ready else {"Retry-After": "1"}
    return JSONResponse(body, status_code=200 if is_ready else 503, headers=headers)
