"""Entry point: ``brainscan-model-sync`` (or ``python -m brainscan_modelsync``) runs uvicorn."""

from __future__ import annotations

from brainscan_servicekit import serve

from .app import create_app
from .settings import ModelSyncSettings

# Long polls hold requests open; on shutdown they get this long to end before being cut.
_GRACEFUL_SHUTDOWN_SECONDS = 5


def run() -> None:
    """Serve the app on MODELSYNC_HOST:MODELSYNC_PORT with settings from the environment."""
    settings = ModelSyncSettings()
    serve(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        graceful_shutdown_seconds=_GRACEFUL_SHUTDOWN_SECONDS,
    )
