"""Liveness and readiness, with the registry's and the webhook's state in the details."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import SettingsDep, SyncerDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def live() -> dict[str, bool]:
    """200 while the process serves HTTP."""
    return {"live": True}


@router.get("/readyz")
async def ready(syncer: SyncerDep, settings: SettingsDep) -> JSONResponse:
    """200 once every followed model has a verified version to serve (from MLflow or the cache),
    503 before; `status` is `degraded` when MLflow is unreachable or the registry's choice is not
    what is served."""
    now = time.time()
    models = {}
    for name, publication in syncer.publications.items():
        current = publication.current
        last = syncer.last_success[name]
        models[name] = {
            "version": current.version if current else None,
            "sha256": current.sha256 if current else None,
            "degraded_reason": publication.degraded_reason,
            "last_success_at": last,
            "sync_lag_seconds": round(now - (last if last is not None else syncer.started_at), 3),
        }
    registry = syncer.registry_status
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
        "webhook": {"state": syncer.webhook.state, "detail": syncer.webhook.detail},
    }
    headers = None if is_ready else {"Retry-After": "1"}
    return JSONResponse(body, status_code=200 if is_ready else 503, headers=headers)
