"""Entry point: ``brainscan-inference`` (or ``python -m brainscan_inference``) runs uvicorn."""

from __future__ import annotations

from typing import Any

from brainscan_servicekit import serve

from .app import create_app
from .http_protocol import CoalescingHttpToolsProtocol
from .settings import InferenceSettings

SERVER_OPTIONS: dict[str, Any] = {
    "http": CoalescingHttpToolsProtocol,  # each response in one write
    "ws": "none",  # no WebSocket endpoints
}
"""uvicorn options of this service beyond servicekit's (tests start their servers with them)."""


def run() -> None:
    """Serve the app on INFERENCE_HOST:INFERENCE_PORT with settings from the environment."""
    settings = InferenceSettings()
    serve(create_app(settings), host=settings.host, port=settings.port, **SERVER_OPTIONS)
