"""The FastAPI application: ``create_app(settings)`` wires the client, checks, routes and page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from brainscan_servicekit import AccessLog, RequestIdMiddleware, configure_logging, get_logger
from brainscan_servicekit.errors import UnhandledErrorMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from . import SERVICE_NAME, __version__
from .api.errors import install_error_handlers
from .api.routes import dicomweb, docs, feedback, health, model, monitoring, page, predictions
from .api.routes import metrics as metrics_route
from .dicomweb.push import StowClient
from .dicomweb.receiver import Receiver, SelectionRule
from .feedback.desk import FeedbackDesk
from .feedback.store import FeedbackStore
from .feedback.window import FeedbackWindow
from .imaging.limits import DecodeLimits
from .metrics import GatewayMetrics
from .middleware.api_keys import API_KEY_HEADER, ApiKeyChecker
from .middleware.rate_limit import RateLimiter
from .middleware.request_metrics import RequestMetricsMiddleware
from .middleware.security_headers import SecurityHeadersMiddleware
from .middleware.upload_limit import UploadLimitMiddleware
from .prediction.canary import Canary
from .prediction.monitoring import DriftMonitor
from .prediction.predictor import Predictor
from .prediction.shadow import ShadowMirror
from .settings import GatewaySettings
from .upstream.circuit_breaker import CircuitBreaker
from .upstream.client import ClientLimits, InferenceClient
from .upstream.served_model import ServedModel

_log = get_logger(__name__)
_QUIET_PATHS = ("/metrics", "/healthz", "/readyz")


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The gateway app; its inference client is opened and closed with the app's lifespan."""
    settings = settings or GatewaySettings()
    configure_logging(SERVICE_NAME, __version__, settings.log_level)
    metrics = GatewayMetrics()
    drift = DriftMonitor(settings.drift_window)
    metrics.registry.register(drift)
    api_keys = ApiKeyChecker(settings.accepted_api_keys())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        breaker = CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            open_seconds=settings.breaker_open_seconds,
            on_state_change=_breaker_logger(metrics),
        )
        client = InferenceClient(
            settings.inference_url,
            settings.model_name,
            limits=_answer_limits(settings),
            breaker=breaker,
        )
        served_model = ServedModel(client, settings.manifest_refresh_seconds)
        shadow = _shadow_mirror(settings, metrics)
        canary = _canary(settings, metrics, shadow)
        app.state.inference_client = client
        app.state.served_model = served_model
        app.state.predictor = Predictor(
            client,
            served_model,
            DecodeLimits(max_pixels=settings.max_image_pixels, min_side=settings.min_image_side),
            settings.default_threshold,
            settings.class_thresholds,
            settings.preview_max_side,
            metrics,
            max_concurrent_image_work=settings.max_concurrent_decodes,
            drift=drift,
            shadow=shadow,
            canary=canary,
        )
        app.state.shadow = shadow
        if shadow is not None:
            predictor, limit = app.state.predictor, settings.shadow_max_answers_in_flight
            shadow.answers_busy = lambda: predictor.in_flight > limit
        app.state.feedback = _feedback_desk(settings, metrics, app.state.predictor)
        pusher = _stow_client(settings)
        if pusher is not None:
            app.state.receiver = Receiver(
                app.state.predictor,
                pusher,
                SelectionRule(re.compile(settings.dicomweb_series_pattern)),
                settings.sr_series_description,
            )
        if shadow is not None:
            shadow.start()
        _log.info(
            "gateway started",
            **{
                "brainscan.inference.url": settings.inference_url,
                "model.name": settings.model_name,
                "brainscan.api_keys": api_keys.enabled,
                "brainscan.feedback": settings.feedback_dir is not None,
                "brainscan.dicomweb.receiver": pusher is not None,
            },
        )
        try:
            yield
        finally:
            if canary is not None:
                await canary.client.aclose()
            if shadow is not None:
                await shadow.stop()
                await shadow.client.aclose()
            if pusher is not None:
                await pusher.aclose()
            await client.aclose()
            _log.info("gateway stopped")

    app = FastAPI(
        title="brainscan gateway",
        version=__version__,
        summary="Classifies brain MRI slices (JPEG, PNG, DICOM) with the served model",
        description=(
            "Upload an image to `POST /api/v1/predictions`. Errors are always "
            '`{"error": {"code", "message", "request_id"}}`. '
            f"When API keys are configured, send one in the `{API_KEY_HEADER}` header."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.drift = drift
    app.state.api_keys = api_keys
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)

    install_error_handlers(app, metrics)
    app.include_router(predictions.router)
    app.include_router(feedback.router)
    if settings.dicomweb_push_url is not None:
        app.include_router(dicomweb.router)
    app.include_router(model.router)
    app.include_router(monitoring.router)
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=str(page.STATIC_DIR)), name="static")
    if settings.docs_enabled:
        app.include_router(docs.router)
        app.mount(docs.ASSETS_PATH, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    # Added innermost first: requests pass request ID -> metrics -> headers -> CORS -> limits.
    app.add_middleware(UnhandledErrorMiddleware, service="the gateway")
    app.add_middleware(
        UploadLimitMiddleware,
        limit=settings.max_upload_bytes,
        routes=frozenset({("POST", predictions.PATH)}),
    )
    app.add_middleware(
        UploadLimitMiddleware,
        limit=feedback.MAX_BODY_BYTES,
        routes=frozenset({("POST", feedback.PATH)}),
    )
    app.add_middleware(
        UploadLimitMiddleware,
        limit=settings.dicomweb_max_body_bytes,
        routes=frozenset({("POST", re.compile(rf"{re.escape(dicomweb.PREFIX)}(/.*)?$"))}),
        hint="send the study in several requests",
    )
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=[API_KEY_HEADER, "X-Request-ID", "Content-Type"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(
        SecurityHeadersMiddleware,
        hsts_seconds=settings.hsts_seconds,
        docs_paths=("/docs", docs.ASSETS_PATH),
    )
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.add_middleware(
        RequestIdMiddleware,
        access_log=AccessLog(SERVICE_NAME, __version__, settings.log_level),
        quiet_paths=_QUIET_PATHS,
    )
    return app


def _answer_limits(settings: GatewaySettings) -> ClientLimits:
    """Timeouts, pool and retries of the calls whose answers clients get."""
    return ClientLimits(
        connect_timeout=settings.inference_connect_timeout,
        read_timeout=settings.inference_timeout,
        pool_timeout=settings.inference_pool_timeout,
        max_connections=settings.inference_max_connections,
        max_keepalive_connections=settings.inference_max_keepalive,
        connect_retries=settings.inference_connect_retries,
        retry_backoff=settings.inference_retry_backoff,
    )


def _stow_client(settings: GatewaySettings) -> StowClient | None:
    """The STOW-RS client of the receiver's SRs; None (receiver off) without a push URL."""
    if settings.dicomweb_push_url is None:
        return None
    password = settings.dicomweb_push_password
    return StowClient(
        settings.dicomweb_push_url,
        settings.dicomweb_push_timeout,
        username=settings.dicomweb_push_username,
        password=password.get_secret_value() if password is not None else None,
    )


def _canary(
    settings: GatewaySettings, metrics: GatewayMetrics, shadow: ShadowMirror | None
) -> Canary | None:
    """The canary's own client: the answers' limits, a circuit of its own (a failing challenger
    falls back to the served model and never opens the circuit in front of it)."""
    if settings.canary_fraction == 0 or shadow is None:
        return None
    client = InferenceClient(
        settings.inference_url,
        settings.model_name,
        limits=_answer_limits(settings),
        breaker=CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            open_seconds=settings.breaker_open_seconds,
        ),
    )
    return Canary(client, shadow, metrics, settings.canary_fraction)


def _feedback_desk(
    settings: GatewaySettings, metrics: GatewayMetrics, predictor: Predictor
) -> FeedbackDesk | None:
    """Feedback when a folder is set for it; None: no image is held after its answer."""
    if settings.feedback_dir is None:
        return None
    window = FeedbackWindow(
        settings.feedback_window_seconds,
        settings.feedback_max_pending,
        settings.feedback_max_pending_bytes,
        on_change=metrics.set_feedback_pending,
    )
    return FeedbackDesk(
        window, FeedbackStore(settings.feedback_dir), metrics, predictor.image_work_slots
    )


def _shadow_mirror(settings: GatewaySettings, metrics: GatewayMetrics) -> ShadowMirror | None:
    """The mirror to the challenger, with a client and circuit of its own: a failing challenger
    opens its circuit, never the one in front of the answers."""
    if settings.shadow_fraction == 0:
        return None
    client = InferenceClient(
        settings.inference_url,
        settings.model_name,
        limits=ClientLimits(
            connect_timeout=settings.inference_connect_timeout,
            # Asking which challenger is held waits as long as any call; a mirrored call only
            # shadow_timeout (ShadowMirror passes it per call).
            read_timeout=settings.inference_timeout,
            pool_timeout=settings.inference_pool_timeout,
            # One per worker and one for asking which challenger is held: none ever waits.
            max_connections=settings.shadow_concurrency + 1,
            max_keepalive_connections=settings.shadow_concurrency + 1,
            connect_retries=0,  # mirrored work is what gives: no retries
        ),
        breaker=CircuitBreaker(
            failure_threshold=settings.breaker_failure_threshold,
            open_seconds=settings.breaker_open_seconds,
        ),
    )
    return ShadowMirror(
        client,
        metrics,
        fraction=settings.shadow_fraction,
        queue_size=settings.shadow_queue_size,
        concurrency=settings.shadow_concurrency,
        refresh_seconds=settings.shadow_refresh_seconds,
        timeout=settings.shadow_timeout,
    )


def _breaker_logger(metrics: GatewayMetrics):
    def on_change(state) -> None:
        metrics.set_breaker_state(state)
        _log.warning("inference circuit breaker changed", **{"brainscan.breaker.state": state})

    return on_change
