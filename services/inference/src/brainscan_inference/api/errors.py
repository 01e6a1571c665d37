"""Errors as the protocol's ``{"error": "<message>"}`` body, plus ``code`` and ``request_id``.

v2 clients (tritonclient among them) read ``error``; the extra keys give a stable machine-
readable code and the request ID to quote when reporting a problem.
"""

from __future__ import annotations

from brainscan_servicekit import current_request_id, get_logger
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import InferenceError

_log = get_logger(__name__)


def error_response(
    status: int, message: str, code: str, retry_after: int | None = None
) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"  # RFC 9110: a 401 names the scheme it wants
    body = {"error": message, "code": code, "request_id": current_request_id()}
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, retry_after_seconds: int) -> None:
    async def inference_error(_request: Request, exc: InferenceError) -> JSONResponse:
        retry_after = retry_after_seconds if exc.status == 503 else None
        return error_response(exc.status, exc.message, exc.code, retry_after)

    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), f"http_{exc.status_code}")

    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return error_response(400, f"invalid request: {problems}", "bad_request")

    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        # Reached only by a bug: answer in the same JSON form instead of a text page.
        _log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal error", "internal")

    app.add_exception_handler(InferenceError, inference_error)
    app.add_exception_handler(Exception, unexpected_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
