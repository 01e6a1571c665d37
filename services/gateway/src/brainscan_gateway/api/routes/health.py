"""``/healthz`` (the process answers) and ``/readyz`` (inference ready, model manifest known)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ...errors import GatewayError
from ..deps import ServedModelDep
from ..schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def live() -> Health:
    """200 while the process serves HTTP (liveness: restart me if this fails)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def ready(request: Request, served_model: ServedModelDep) -> JSONResponse:
    """200 only when inference is ready and its model's manifest is known; 503 otherwise."""
    client = request.app.state.inference_client
    inference_ready = await client.is_ready()
    checks = {"inference": "ready" if inference_ready else "not ready"}
    try:
        manifest = await served_model.get()
        checks["model"] = f"{manifest.name} {manifest.version}"
        model_known = True
    except GatewayError as exc:
        checks["model"] = exc.code.value
        model_known = False
    ok = inference_ready and model_known
    body = Health(status="ready" if ok else "not ready", checks=checks)
    return JSONResponse(
        body.model_dump(),
        status_code=200 if ok else 503,
        headers=None if ok else {"Retry-After": "5"},
    )
