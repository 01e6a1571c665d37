"""The FastAPI application: ``create_app(settings)`` wires registry, cache, syncer and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from brainscan_servicekit import AccessLog, RequestIdMiddleware, configure_logging, get_logger
from brainscan_servicekit.errors import UnhandledErrorMiddleware
from fastapi import FastAPI

from . import SERVICE_NAME, __version__
from .api.errors import install_error_handlers
from .api.routes import health, models, webhooks
from .api.routes import metrics as metrics_route
from .cache import PackageCache
from .metrics import ModelSyncMetrics
from .mlflow_registry import MlflowRegistry, configure_mlflow_http
from .settings import ModelSyncSettings
from .syncer import ModelSyncer
from .webhook_registration import WebhookRegistration
from .webhook_signature import WebhookVerifier

_log = get_logger(__name__)
_QUIET_PATHS = ("/metrics", "/healthz", "/readyz")


def end_long_polls(app: FastAPI) -> None:
    """Answer every open long poll now, with what is served (503 with Retry-After if nothing).

    For the server to call when it starts stopping (``main.ModelSyncServer`` does): a long poll
    would otherwise hold the graceful shutdown until it timed out and then be cancelled, which
    uvicorn reports as a 500 with a stack trace. A no-op before the app has started.
    """
    syncer: ModelSyncer | None = getattr(app.state, "syncer", None)
    if syncer is not None:
        syncer.end_long_polls()


def create_app(settings: ModelSyncSettings | None = None) -> FastAPI:
    """An app that starts following the registry when it starts, and stops when it stops."""
    settings = settings or ModelSyncSettings()
    configure_logging(SERVICE_NAME, __version__, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_mlflow_http(settings.mlflow_timeout)
        metrics = ModelSyncMetrics()
        registry = MlflowRegistry(
            settings.mlflow_tracking_uri,
            alias=settings.alias,
            follow_legacy_stage=settings.follow_legacy_stage,
        )
        cache = PackageCache(settings.cache_dir, settings.cache_max_versions)
        syncer = ModelSyncer(settings, registry, cache, metrics)
        webhook = WebhookRegistration(settings, registry, metrics)
        app.state.settings = settings
        app.state.metrics = metrics
        app.state.syncer = syncer
        app.state.webhook = webhook
        app.state.webhook_verifier = (
            WebhookVerifier(
                settings.webhook_secret.get_secret_value(), settings.webhook_tolerance_seconds
            )
            if settings.webhook_secret is not None
            else None
        )
        syncer.start()
        webhook.start()
        _log.info(
            "model-sync started",
            **{
                "brainscan.registry.url": settings.mlflow_tracking_uri,
                "brainscan.models": settings.models,
                "brainscan.webhook.state": str(webhook.status.state),
            },
        )
        try:
            yield
        finally:
            await webhook.stop()
            await syncer.stop()
            _log.info("model-sync stopped")

    app = FastAPI(
        title="brainscan model-sync",
        version=__version__,
        summary="Follows the MLflow registry's production model and serves it to inference",
        description=(
            'Errors are always `{"error": {"code", "message", "request_id"}}`. '
            "Replicas long poll `GET /v1/models/{name}?wait=S&known=V` and fetch "
            "`GET /v1/models/{name}/versions/{v}/artifact` (ETag = sha256)."
        ),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(models.router)
    app.include_router(webhooks.router)
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    app.add_middleware(UnhandledErrorMiddleware, service="model-sync")
    app.add_middleware(
        RequestIdMiddleware,
        access_log=AccessLog(SERVICE_NAME, __version__, settings.log_level),
        quiet_paths=_QUIET_PATHS,
    )
    return app
