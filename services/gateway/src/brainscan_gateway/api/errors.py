"""Every error as ``{"error": {"code", "message", "request_id"}}``: ours, FastAPI's, and bugs.

FastAPI's own 404/405/422 shapes are replaced, so a client parses one shape whatever failed.
"""

from __future__ import annotations

from brainscan_servicekit import get_logger
from brainscan_servicekit.errors import describe_validation, error_response
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import ErrorCode, GatewayError
from ..metrics import GatewayMetrics

_log = get_logger(__name__)

_HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.UPLOAD_TOO_LARGE,
    422: ErrorCode.INVALID_REQUEST,
}
_UPSTREAM_CODES = {
    ErrorCode.INFERENCE_UNAVAILABLE,
    ErrorCode.INFERENCE_TIMEOUT,
    ErrorCode.INFERENCE_ERROR,
    ErrorCode.MODEL_NOT_READY,
}


def install_error_handlers(app: FastAPI, metrics: GatewayMetrics) -> None:
    async def gateway_error(_request: Request, exc: GatewayError) -> JSONResponse:
        counter = metrics.upstream_errors if exc.code in _UPSTREAM_CODES else metrics.rejected
        counter.labels(exc.code.value).inc()
        _log.info(
            "request refused",
            **{
                "event.outcome": "failure",
                "error.code": exc.code.value,
                "error.message": exc.message,  # never quotes the upload (see ..errors)
                "http.response.status_code": exc.status,
            },
        )
        return error_response(exc.status, exc.code.value, exc.message, exc.headers)

    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = "no such endpoint: see /docs for the API"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
            message = "method not allowed on this endpoint" + (
                f"; allowed: {allowed}" if allowed else ""
            )
        metrics.rejected.labels(str(code)).inc()
        return error_response(exc.status_code, str(code), message, exc.headers)

    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.rejected.labels(ErrorCode.INVALID_REQUEST.value).inc()
        return error_response(422, ErrorCode.INVALID_REQUEST.value, describe_validation(exc))

    app.add_exception_handler(GatewayError, gateway_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
