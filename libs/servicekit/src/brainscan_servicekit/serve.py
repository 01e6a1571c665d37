"""How every service runs under uvicorn: ECS logging kept, one access event, graceful stop."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.main import STARTUP_FAILURE


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


def serve(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    server_class: type[uvicorn.Server] = uvicorn.Server,
    **options: Any,
) -> None:
    """Run ``app`` until SIGTERM or SIGINT (then finish open requests, up to the grace time).

    ``server_class`` lets a service hook uvicorn's shutdown; a server that never started (e.g.
    its port is taken) exits with uvicorn's startup-failure status, as ``uvicorn.run`` does.
    """
    server = server_class(server_config(app, host=host, port=port, **options))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has already shut down cleanly
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
