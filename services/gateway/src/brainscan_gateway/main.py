"""Entry point: ``brainscan-gateway`` (or ``python -m brainscan_gateway``) runs uvicorn."""

from __future__ import annotations

from brainscan_servicekit import serve

from .app import create_app
from .settings import GatewaySettings


def run() -> None:
    """Serve the app on GATEWAY_HOST:GATEWAY_PORT with settings from the environment."""
    settings = GatewaySettings()
    serve(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        # Client addresses from X-Forwarded-For only when GATEWAY_TRUST_FORWARDED_FOR says so.
        proxy_headers=False,
    )
