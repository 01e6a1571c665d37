"""How every service runs under uvicorn: ECS logging kept, one access event, graceful stop."""

from __future__ import annotations

from typing import Any

import uvicorn
from starlette.types import ASGIApp


def server_config(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    graceful_shutdown_seconds: float = 30,
    **options: Any,
) -> uvicorn.Config:
    """The uvicorn configuration of a service (tests start their servers with it too);
    ``options`` go to uvicorn as they are (e.g. ``http=``, ``lifespan=``)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # keep the ECS JSON logging the app configured
        access_log=False,  # the request-ID middleware writes one access event per request
        timeout_graceful_shutdown=graceful_shutdown_seconds,
        **options,
    )


def serve(app: ASGIApp, *, host: str, port: int, **options: Any) -> None:
    """Run ``app`` until SIGTERM or SIGINT (then finish open requests, up to the grace time)."""
    uvicorn.Server(server_config(app, host=host, port=port, **options)).run()
