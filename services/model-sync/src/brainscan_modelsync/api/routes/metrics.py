"""``GET /metrics``: the Prometheus text exposition of the service's own registry."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import MetricsDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics (see docs/model-sync.md for the list)."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
