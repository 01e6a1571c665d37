"""Model metadata and readiness: ``/v2/models/{name}[/versions/{version}][/ready|/manifest]``,
and the challenger held in shadow: ``/v2/models/{name}/challenger/manifest``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import ModelSlotDep

router = APIRouter(tags=["models"])


@router.get("/v2/models/{name}")
async def model_metadata(name: str, slot: ModelSlotDep) -> dict[str, Any]:
    """Inputs and outputs (datatype, shape; -1 = any batch size) and the version served."""
    return slot.resolve(name).metadata()


@router.get("/v2/models/{name}/versions/{version}")
async def model_version_metadata(name: str, version: str, slot: ModelSlotDep) -> dict[str, Any]:
    """Metadata of one version (404 unless it is the version served)."""
    return slot.resolve(name, version).metadata()


@router.get("/v2/models/{name}/ready")
async def model_ready(name: str, slot: ModelSlotDep) -> dict[str, Any]:
    """200 when the model is loaded and warmed up; 404 unknown; 503 not loaded yet."""
    model = slot.resolve(name)
    return {"name": model.name, "version": model.version, "ready": True}


@router.get("/v2/models/{name}/versions/{version}/ready")
async def model_version_ready(name: str, version: str, slot: ModelSlotDep) -> dict[str, Any]:
    """200 when that version is the one loaded and warmed up."""
    model = slot.resolve(name, version)
    return {"name": model.name, "version": model.version, "ready": True}


@router.get("/v2/models/{name}/manifest")
async def model_manifest(name: str, slot: ModelSlotDep) -> dict[str, Any]:
    """The served model's manifest (brainscan extension): classes, input spec, threshold."""
    return slot.resolve(name).manifest.model_dump(mode="json")


@router.get("/v2/models/{name}/versions/{version}/manifest")
async def model_version_manifest(name: str, version: str, slot: ModelSlotDep) -> dict[str, Any]:
    """The manifest of one version (404 unless it is the version served)."""
    return slot.resolve(name, version).manifest.model_dump(mode="json")


@router.get("/v2/models/{name}/challenger/manifest")
async def challenger_manifest(name: str, slot: ModelSlotDep) -> dict[str, Any]:
    """The manifest of the challenger held in shadow (brainscan extension); 404
    ``no_challenger`` while there is none. It answers only when asked for by its version."""
    return slot.challenger(name).manifest.model_dump(mode="json")
