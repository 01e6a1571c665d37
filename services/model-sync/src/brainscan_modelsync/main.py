"""Entry point: ``brainscan-model-sync`` (or ``python -m brainscan_modelsync``) runs uvicorn."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import ModelSyncSettings

# Long polls hold requests open; on shutdown they get this long to end before being cut.
_GRACEFUL_SHUTDOWN_SECONDS = 5


def run() -> None:
    """Serve the app on MODELSYNC_HOST:MODELSYNC_PORT with settings from the environment."""
    settings = ModelSyncSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the ECS JSON logging configured by create_app
        access_log=False,  # the request-ID middleware writes one access event per request
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
    )
