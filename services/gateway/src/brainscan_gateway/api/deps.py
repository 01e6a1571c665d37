"""Request dependencies: the app's parts from its state, and the access checks.

All are ``async def`` although none awaits: FastAPI runs a plain ``def`` dependency in a worker
thread, a thread hop per dependency per request for work of a few microseconds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from ..errors import ErrorCode, GatewayError
from ..feedback.desk import FeedbackDesk
from ..metrics import GatewayMetrics
from ..middleware.api_keys import API_KEY_HEADER, ApiKeyChecker
from ..middleware.rate_limit import RateLimiter, retry_after_header
from ..prediction.predictor import Predictor
from ..prediction.shadow import ShadowMirror
from ..settings import GatewaySettings
from ..upstream.served_model import ServedModel

# auto_error=False: the checker below decides (keys may be switched off), and answers in our shape.
_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="Needed only when API keys are configured."
)


async def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


async def get_predictor(request: Request) -> Predictor:
    return request.app.state.predictor


async def get_served_model(request: Request) -> ServedModel:
    return request.app.state.served_model


async def get_metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


async def get_shadow(request: Request) -> ShadowMirror | None:
    return request.app.state.shadow


async def get_feedback(request: Request) -> FeedbackDesk | None:
    return request.app.state.feedback


def forwarded_client(forwarded_for: list[str], trusted_hops: int) -> str | None:
    """The address ``trusted_hops`` entries from the right of X-Forwarded-For, or None.

    Each trusted proxy appends the address it was connected from, so the rightmost entries are
    theirs; anything to the left of them was sent by the client and proves nothing.
    """
    entries = [entry.strip() for line in forwarded_for for entry in line.split(",")]
    if len(entries) < trusted_hops or not entries[-trusted_hops]:
        return None
    return entries[-trusted_hops]


def client_address(request: Request, settings: GatewaySettings) -> str:
    if settings.trust_forwarded_for:
        # Several header lines count as one list, in order (RFC 9110 5.3).
        forwarded = forwarded_client(
            request.headers.getlist("x-forwarded-for"), settings.trusted_proxy_hops
        )
        if forwarded:
            return forwarded
    return request.client.host if request.client else "unknown"


async def authenticated_client(
    request: Request, api_key: Annotated[str | None, Security(_api_key_header)]
) -> str:
    """The caller's identity: its key's fingerprint, or its address when keys are off."""
    checker: ApiKeyChecker = request.app.state.api_keys
    key_id = checker.client_id(api_key)
    settings: GatewaySettings = request.app.state.settings
    return key_id or "ip:" + client_address(request, settings)


async def rate_limited_client(
    request: Request, client: Annotated[str, Depends(authenticated_client)]
) -> str:
    """As ``authenticated_client``, and within its rate limit (else 429 + Retry-After)."""
    limiter: RateLimiter = request.app.state.rate_limiter
    wait = limiter.check(client)
    if wait is not None:
        raise GatewayError(
            ErrorCode.RATE_LIMITED,
            f"too many requests from this client: retry in {retry_after_header(wait)} s",
            429,
            headers={"Retry-After": retry_after_header(wait)},
        )
    return client


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
ServedModelDep = Annotated[ServedModel, Depends(get_served_model)]
MetricsDep = Annotated[GatewayMetrics, Depends(get_metrics)]
ShadowDep = Annotated[ShadowMirror | None, Depends(get_shadow)]
FeedbackDep = Annotated[FeedbackDesk | None, Depends(get_feedback)]
ClientDep = Annotated[str, Depends(authenticated_client)]
RateLimitedClientDep = Annotated[str, Depends(rate_limited_client)]
