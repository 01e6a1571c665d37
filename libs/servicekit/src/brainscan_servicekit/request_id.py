"""X-Request-ID: taken from the caller when well formed, made otherwise, logged and returned.

A pure ASGI middleware (not BaseHTTPMiddleware) so streaming bodies and cancellation behave,
and cheap enough to sit in front of a service's hot path. It binds the ID to every log event
of the request and hands one access event per request to an ``AccessLog``.
"""

from __future__ import annotations

import re
import time
import uuid
from contextvars import ContextVar

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .access_log import AccessLog

HEADER = b"x-request-id"
_VALID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_LOG_KEY = "http.request.id"
_current: ContextVar[str] = ContextVar("request_id", default="")


def current_request_id() -> str:
    """The request ID of the request being handled ('' outside a request)."""
    return _current.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def _incoming_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == HEADER:
            candidate = value.strip()
            # A malformed caller ID is replaced, never echoed: it would end up in logs verbatim.
            return candidate.decode("ascii") if _VALID.match(candidate) else new_request_id()
    return new_request_id()


class RequestIdMiddleware:
    """Request ID in and out, bound for logs, and one access event per request to ``access_log``.

    ``quiet_paths`` (probes, metrics) get the ID but no access event; so does every request
    when ``access_log`` is None or disabled by its level.
    """

    def __init__(
        self, app: ASGIApp, *, access_log: AccessLog | None, quiet_paths: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.access_log = access_log if access_log is not None and access_log.enabled else None
        self.quiet_paths = frozenset(quiet_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            try:
                await self.app(scope, receive, send)
            finally:
                if scope["type"] == "lifespan" and self.access_log is not None:
                    self.access_log.flush()  # the events of the last step, before the exit
            return
        request_id = _incoming_id(scope)
        encoded_id = request_id.encode("ascii")
        token = _current.set(request_id)
        structlog.contextvars.bind_contextvars(**{_LOG_KEY: request_id})
        started = time.perf_counter_ns()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != HEADER]
                headers.append((HEADER, encoded_id))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope["path"]
            if self.access_log is not None and path not in self.quiet_paths:
                self.access_log.request(
                    scope["method"], path, status, time.perf_counter_ns() - started, request_id
                )
            structlog.contextvars.unbind_contextvars(_LOG_KEY)
            _current.reset(token)
