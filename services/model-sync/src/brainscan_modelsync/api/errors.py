"""Every error as ``{"error": {"code", "message", "request_id"}}``: ours, FastAPI's, and bugs."""

from __future__ import annotations

from brainscan_servicekit.errors import describe_validation, error_response
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import ErrorCode, ModelSyncError

_HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    422: ErrorCode.INVALID_REQUEST,
}


def install_error_handlers(app: FastAPI) -> None:
    async def model_sync_error(_request: Request, exc: ModelSyncError) -> JSONResponse:
        return error_response(exc.status, exc.code.value, exc.message, exc.headers)

    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = "no such endpoint: see docs/model-sync.md or /docs for the API"
        elif exc.status_code == 405:
            message = "method not allowed on this endpoint"
        return error_response(exc.status_code, str(code), message, exc.headers)

    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, ErrorCode.INVALID_REQUEST.value, describe_validation(exc))

    app.add_exception_handler(ModelSyncError, model_sync_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
