"""Server health and metadata: ``/v2/health/live``, ``/v2/health/ready``, ``/v2``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ... import SERVICE_NAME, __version__
from ..deps import ModelSlotDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/v2/health/live")
async def live() -> dict[str, bool]:
    """200 while the process serves HTTP at all."""
    return {"live": True}


@router.get("/v2/health/ready")
async def ready(slot: ModelSlotDep, settings: SettingsDep) -> JSONResponse:
    """200 once a model is loaded and warmed up; 503 + Retry-After before."""
    if slot.ready:
        return JSONResponse({"ready": True})
    return JSONResponse(
        {"ready": False},
        status_code=503,
        headers={"Retry-After": str(settings.retry_after_seconds)},
    )


@router.get("/v2")
async def server_metadata(settings: SettingsDep) -> dict[str, object]:
    """Server name, version and the protocol extensions it supports."""
    extensions = ["binary_tensor_data"]
    if settings.repository_api:
        extensions.append("model_repository")
    return {"name": SERVICE_NAME, "version": __version__, "extensions": extensions}
