"""Every error as ``{"error": {"code", "message", "request_id"}}``: ours, FastAPI's, and bugs.

The shape and the handlers are servicekit's; the gateway counts each refusal in its metrics and
logs its own errors.
"""

from __future__ import annotations

from brainscan_servicekit import get_logger
from brainscan_servicekit.errors import install_error_handlers as install_shared_handlers
from fastapi import FastAPI

from ..errors import ErrorCode, GatewayError
from ..metrics import GatewayMetrics

_log = get_logger(__name__)

_UPSTREAM_CODES = {
    ErrorCode.INFERENCE_UNAVAILABLE,
    ErrorCode.INFERENCE_TIMEOUT,
    ErrorCode.INFERENCE_ERROR,
    ErrorCode.MODEL_NOT_READY,
}


def install_error_handlers(app: FastAPI, metrics: GatewayMetrics) -> None:
    def observe(code: str, exc: Exception) -> None:
        if not isinstance(exc, GatewayError):
            metrics.rejected.labels(code).inc()
            return
        counter = metrics.upstream_errors if exc.code in _UPSTREAM_CODES else metrics.rejected
        counter.labels(code).inc()
        _log.info(
            "request refused",
            **{
                "event.outcome": "failure",
                "error.code": code,
                "error.message": exc.message,  # never quotes the upload (see ..errors)
                "http.response.status_code": exc.status,
            },
        )

    install_shared_handlers(
        app,
        not_found_hint="see /docs for the API",
        http_codes={413: ErrorCode.UPLOAD_TOO_LARGE.value},
        observe=observe,
    )
