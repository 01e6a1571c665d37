"""Entry point: ``brainscan-model-sync`` (or ``python -m brainscan_modelsync``) runs uvicorn."""

from __future__ import annotations

import socket

import uvicorn
from brainscan_servicekit import serve
from fastapi import FastAPI

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
    serve(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        server_class=ModelSyncServer,
        graceful_shutdown_seconds=_GRACEFUL_SHUTDOWN_SECONDS,
    )
