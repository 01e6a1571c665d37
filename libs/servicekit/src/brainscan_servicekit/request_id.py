"""X-Request-ID: taken from the caller when well formed, made otherwise, logged and returned.

A pure ASGI middleware (not BaseHTTPMiddleware) so streaming bodies and cancellation behave.
It also writes one ECS access event per request with its status and duration.
"""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_current: ContextVar[str] = ContextVar("request_id", default="")
_log = structlog.get_logger("access")


def current_request_id() -> str:
    """The request ID of the request being handled ('' outside a request)."""
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def _incoming_id(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key == HEADER.encode():
            candidate = value.decode("latin-1").strip()
            # A malformed caller ID is replaced, never echoed: it would end up in logs verbatim.
            return candidate if _VALID.match(candidate) else new_request_id()
    return new_request_id()


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, skip_access_log: tuple[str, ...] = ()) -> None:
        self.app = app
        self.skip_access_log = skip_access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope)
        token = _current.set(request_id)
        structlog.contextvars.bind_contextvars(**{"http.request.id": request_id})
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != HEADER.encode()]
                headers.append((HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            if path not in self.skip_access_log:
                _log.info(
                    "request",
                    **{
                        "http.request.method": scope.get("method", ""),
                        "url.path": path,
                        "http.response.status_code": status,
                        "event.duration": int((time.perf_counter() - started) * 1e9),
                    },
                )
            structlog.contextvars.unbind_contextvars("http.request.id")
            _current.reset(token)
