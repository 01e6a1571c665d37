"""Entry point: ``brainscan-model-sync`` (or ``python -m brainscan_modelsync``) runs uvicorn."""

from __future__ import annotations

import contextlib
import socket
import sys

import uvicorn
from fastapi import FastAPI
from uvicorn.main import STARTUP_FAILURE

from .app import create_app, end_long_polls
from .settings import ModelSyncSettings

# Requests still open on shutdown get this long to end before being cut (long polls are
# answered at once, see ModelSyncServer).
_GRACEFUL_SHUTDOWN_SECONDS = 5


class ModelSyncServer(uvicorn.Server):
    """uvicorn that answers model-sync's open long polls as soon as it starts shutting down,
    before it waits for the open requests to end."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if isinstance(self.config.app, FastAPI):
            end_long_polls(self.config.app)
        await super().shutdown(sockets=sockets)


def run() -> None:
    """Serve the app on MODELSYNC_HOST:MODELSYNC_PORT with settings from the environment."""
    settings = ModelSyncSettings()
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the ECS JSON logging configured by create_app
        access_log=False,  # the request-ID middleware writes one access event per request
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = ModelSyncServer(config)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has shut down cleanly
        server.run()
    if not server.started:  # as uvicorn.run: e.g. the port is taken
        sys.exit(STARTUP_FAILURE)
