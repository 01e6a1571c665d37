"""Entry point: ``brainscan-inference`` (or ``python -m brainscan_inference``) runs uvicorn."""

from __future__ import annotations

from typing import Any

import uvicorn

from .app import create_app
from .http_protocol import CoalescingHttpToolsProtocol
from .settings import InferenceSettings

SERVER_OPTIONS: dict[str, Any] = {
    "log_config": None,  # keep the ECS JSON logging configured by create_app
    "access_log": False,  # the request-ID middleware writes one access event per request
    "http": CoalescingHttpToolsProtocol,  # each response in one write
    "ws": "none",  # no WebSocket endpoints
    "timeout_graceful_shutdown": 30,
}
"""uvicorn options of the service (tests start their servers with the same)."""


def run() -> None:
    """Serve the app on INFERENCE_HOST:INFERENCE_PORT with settings from the environment."""
    settings = InferenceSettings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, **SERVER_OPTIONS)
