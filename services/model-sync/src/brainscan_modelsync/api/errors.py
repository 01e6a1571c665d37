"""Every error as ``{"error": {"code", "message", "request_id"}}``: ours, FastAPI's, and bugs."""

from __future__ import annotations

from brainscan_servicekit.errors import install_error_handlers as install_shared_handlers
from fastapi import FastAPI


def install_error_handlers(app: FastAPI) -> None:
    # 400 for a bad parameter: the API has always answered so (docs/model-sync.md).
    install_shared_handlers(
        app, not_found_hint="see docs/model-sync.md or /docs for the API", validation_status=400
    )
