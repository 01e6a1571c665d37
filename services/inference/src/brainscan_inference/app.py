"""The FastAPI application: ``create_app(settings)`` wires source, model slot, batcher, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from brainscan_servicekit import AccessLog, RequestIdMiddleware, configure_logging, get_logger
from fastapi import FastAPI
from starlette.types import ASGIApp

from . import SERVICE_NAME, __version__
from .api.errors import install_error_handlers
from .api.routes import health, models, repository
from .api.routes import metrics as metrics_route
from .api.routes.infer import InferenceRoute
from .metrics import InferenceMetrics
from .model_slot import ModelSlot
from .settings import InferenceSettings
from .sources import LocalDirectorySource, ModelSource, ModelSyncSource
from .updater import ModelUpdater

_log = get_logger(__name__)
_QUIET_PATHS = ("/metrics", "/v2/health/live", "/v2/health/ready")


def source_from_settings(settings: InferenceSettings) -> ModelSource:
    """The model source the settings name."""
    if settings.model_source == "modelsync":
        return _modelsync_source(settings, settings.modelsync_cache_dir)
    return LocalDirectorySource(
        settings.model_dir,
        poll_interval=settings.model_poll_interval,
        pinned_version=settings.model_version,
    )


def challenger_source(settings: InferenceSettings) -> ModelSource | None:
    """Where the challenger comes from: model-sync's challenger of the followed model (in a
    cache folder of its own), or the local challenger directory; None: no challenger."""
    if not settings.shadow:
        return None
    if settings.model_source == "modelsync":
        cache_dir = settings.modelsync_cache_dir / "challenger"
        return _modelsync_source(settings, cache_dir, challenger=True)
    if settings.challenger_dir is not None:
        return LocalDirectorySource(
            settings.challenger_dir, poll_interval=settings.model_poll_interval, optional=True
        )
    return None


def _modelsync_source(
    settings: InferenceSettings, cache_dir: Path, *, challenger: bool = False
) -> ModelSyncSource:
    return ModelSyncSource(
        settings.modelsync_url,
        settings.followed_model or "",
        cache_dir,
        wait=settings.modelsync_wait,
        timeout=settings.modelsync_timeout,
        challenger=challenger,
    )


class InferenceApp(FastAPI):
    """FastAPI with two layers in front of its own middleware: request IDs and access events
    for every request, then inference requests straight to their endpoint (api/routes/infer.py). The
    hot path thereby skips FastAPI's error, telemetry and body-limit layers and its router."""

    def __init__(self, *, access_log: AccessLog, **options: Any) -> None:
        super().__init__(**options)
        self._access_log = access_log

    def build_middleware_stack(self) -> ASGIApp:
        return RequestIdMiddleware(
            InferenceRoute(super().build_middleware_stack()),
            access_log=self._access_log,
            quiet_paths=_QUIET_PATHS,
        )


def create_app(
    settings: InferenceSettings | None = None, *, source: ModelSource | None = None
) -> FastAPI:
    """An app that loads its model in the background and is ready once it is warmed up."""
    settings = settings or InferenceSettings()
    configure_logging(SERVICE_NAME, __version__, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics = InferenceMetrics()
        slot = ModelSlot(settings, metrics)
        updater = ModelUpdater(source or source_from_settings(settings), slot)
        shadow_updater = None
        shadow_source = challenger_source(settings) if source is None else None
        if shadow_source is not None:
            slot.shadow = ModelSlot(settings, metrics, shadow=True)
            shadow_updater = ModelUpdater(shadow_source, slot.shadow)
        app.state.settings = settings
        app.state.metrics = metrics
        app.state.model_slot = slot
        app.state.updater = updater
        # Large JSON bodies are parsed here, off the event loop. Two threads: parsing holds the
        # GIL, so more would not be faster, and each holds a request's values in memory.
        app.state.codec_executor = ThreadPoolExecutor(2, thread_name_prefix="json-codec")
        updater.start()
        if shadow_updater is not None:
            shadow_updater.start()
        _log.info(
            "inference service started", **{"brainscan.model_source": updater.source.description}
        )
        try:
            yield
        finally:
            await updater.stop()
            if shadow_updater is not None:
                await shadow_updater.stop()
                await slot.shadow.close()
            await slot.close()
            app.state.codec_executor.shutdown(wait=False, cancel_futures=True)
            _log.info("inference service stopped")

    app = InferenceApp(
        access_log=AccessLog(SERVICE_NAME, __version__, settings.log_level),
        title="brainscan inference",
        version=__version__,
        summary="ONNX image classifiers behind the Open Inference Protocol (v2)",
        lifespan=lifespan,
    )
    install_error_handlers(app, settings.retry_after_seconds)
    app.include_router(health.router)
    app.include_router(models.router)
    if settings.repository_api:
        app.include_router(repository.router)
    app.include_router(metrics_route.router)
    return app
