"""``GET /api/v1/monitoring``: the latest predictions of each model version against its
training reference (drift and out-of-distribution rate)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..deps import ClientDep
from ..responses import errors

router = APIRouter(prefix="/api/v1", tags=["monitoring"])


@router.get("/monitoring", responses=errors(401))
async def drift_report(request: Request, _client: ClientDep) -> dict:
    """Rolling-window comparison with the training reference: PSI of the class mix,
    confidence and input intensity, and the share of images not assessed."""
    return request.app.state.drift.report()
