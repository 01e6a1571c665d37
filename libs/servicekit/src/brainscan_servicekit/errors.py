"""The error shape of the project's own APIs: ``{"error": {"code", "message", "request_id"}}``.

The gateway and model-sync use it for their errors, FastAPI's 404/405/422 and bugs alike, so
a client parses one shape whatever failed. (Inference answers in the v2 protocol's own form.)
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logging import get_logger
from .request_id import current_request_id

INTERNAL_ERROR = "internal_error"
_log = get_logger(__name__)


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
