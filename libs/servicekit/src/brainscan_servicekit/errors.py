"""The error shape of the project's own APIs: ``{"error": {"code", "message", "request_id"}}``.

The gateway and model-sync use it for their errors, FastAPI's 404/405/422 and bugs alike, so
a client parses one shape whatever failed. (Inference answers in the v2 protocol's own form.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logging import get_logger
from .request_id import current_request_id

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError

INTERNAL_ERROR = "internal_error"
INVALID_REQUEST = "invalid_request"
_log = get_logger(__name__)
_HTTP_CODES = {
    400: INVALID_REQUEST,
    404: "not_found",
    405: "method_not_allowed",
    422: INVALID_REQUEST,
}


class ServiceError(Exception):
    """An expected failure that becomes a JSON error response (each service's errors derive)."""

    def __init__(
        self, code: str, message: str, status: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}


# Called with the answered code and the exception, for a service's metrics and logs.
ErrorObserver = Callable[[str, Exception], None]


def install_error_handlers(
    app: FastAPI,
    *,
    not_found_hint: str,
    validation_status: int = 422,
    http_codes: Mapping[int, str] | None = None,
    observe: ErrorObserver | None = None,
) -> None:
    """Answer the service's own errors, FastAPI's 404/405/422 and Starlette's HTTP errors in the
    one shape; ``not_found_hint`` says where the API is described."""
    from fastapi.exceptions import RequestValidationError

    codes = {**_HTTP_CODES, **(http_codes or {})}

    def observed(code: str, exc: Exception) -> None:
        if observe is not None:
            observe(code, exc)

    async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        observed(str(exc.code), exc)
        return error_response(exc.status, str(exc.code), exc.message, exc.headers)

    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no such endpoint: {not_found_hint}"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
            message = "method not allowed on this endpoint" + (
                f"; allowed: {allowed}" if allowed else ""
            )
        observed(code, exc)
        return error_response(exc.status_code, code, message, exc.headers)

    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        observed(INVALID_REQUEST, exc)
        return error_response(validation_status, INVALID_REQUEST, describe_validation(exc))

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def error_body(code: str, message: str, request_id: str) -> dict[str, dict[str, str]]:
    """The one error shape every response uses."""
    return {"error": {"code": str(code), "message": message, "request_id": request_id}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, current_request_id()), status_code=status, headers=headers
    )


def describe_validation(exc) -> str:
    """FastAPI's RequestValidationError as one sentence naming each bad parameter."""
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        where = f"{location[0]} parameter {'.'.join(location[1:])!r}" if location else "request"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(problems)


class UnhandledErrorMiddleware:
    """A bug becomes a logged traceback and a JSON 500 that still carries the request ID."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.message = (
            f"an unexpected error occurred in {service}; quote the request id when reporting it"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            _log.exception("unhandled error", **{"url.path": scope.get("path", "")})
            if started:
                raise
            await error_response(500, INTERNAL_ERROR, self.message)(scope, receive, send)
