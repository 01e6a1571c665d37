"""Entry point: ``brainscan-gateway`` (or ``python -m brainscan_gateway``) runs uvicorn."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .settings import GatewaySettings


def run() -> None:
    """Serve the app on GATEWAY_HOST:GATEWAY_PORT with settings from the environment."""
    settings = GatewaySettings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the ECS JSON logging configured by create_app
        access_log=False,  # the request-ID middleware writes one access event per request
        # Client addresses from X-Forwarded-For only when GATEWAY_TRUST_FORWARDED_FOR says so.
        proxy_headers=False,
        timeout_graceful_shutdown=30,
    )
