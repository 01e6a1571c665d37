"""X-Request-ID and one ECS access event per request, at a few microseconds a request.

Same rules and fields as ``brainscan_servicekit.RequestIdMiddleware`` (the ID is taken from the
caller when well formed, made otherwise, bound to every log event of the request and returned;
the event has the method, path, status and duration), written for a service answering
thousands of requests a second: the event is serialised with orjson instead of going through
structlog's processor chain (~100 µs), and the events finished in one event-loop step go to
stdout in one write, at the end of that step.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson
import structlog
from brainscan_servicekit import new_request_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-request-id"
_VALID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_REQUEST_ID_KEY = "http.request.id"
_current: ContextVar[str] = ContextVar("inference_request_id", default="")


def current_request_id() -> str:
    """The request ID of the request being handled ('' outside a request)."""
    return _current.get()


def _incoming_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == HEADER:
            candidate = value.strip()
            # A malformed caller ID is replaced, never echoed: it would end up in logs verbatim.
            return candidate.decode("ascii") if _VALID.match(candidate) else new_request_id()
    return new_request_id()


class AccessLog:
    """Writes access events as ECS JSON lines to the current ``sys.stdout``, batched per step."""

    def __init__(self, service_name: str, service_version: str, dataset: str) -> None:
        self._service = {"name": service_name, "version": service_version}
        self._dataset = dataset
        self._pending: list[bytes] = []

    def request(
        self, method: str, path: str, status: int, duration_ns: int, request_id: str
    ) -> None:
        """Queue one access event; it is written when the current event-loop step ends."""
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        event = {
            "@timestamp": f"{stamp}.{int(now * 1000) % 1000:03d}Z",
            "log.level": "info",
            "message": "request",
            "ecs.version": "1.6.0",
            "event": {"dataset": self._dataset, "duration": duration_ns},
            "http": {
                "request": {"id": request_id, "method": method},
                "response": {"status_code": status},
            },
            "service": self._service,
            "url": {"path": path},
        }
        if not self._pending:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (never in a request): write at once
                self._pending.append(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
                self.flush()
                return
        self._pending.append(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))

    def flush(self) -> None:
        """Write the queued events in one write (also called at shutdown)."""
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        stream = sys.stdout  # looked up each time: a replaced stdout is honoured
        stream.write(b"".join(lines).decode())
        stream.flush()


class AccessLogMiddleware:
    """Pure ASGI middleware: request ID in and out, bound for logs, one access event per request.

    ``quiet_paths`` (probes, metrics) get the ID but no access event.
    """

    def __init__(
        self, app: ASGIApp, *, access_log: AccessLog | None, quiet_paths: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.quiet_paths = frozenset(quiet_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope)
        encoded_id = request_id.encode("ascii")
        token = _current.set(request_id)
        structlog.contextvars.bind_contextvars(**{_REQUEST_ID_KEY: request_id})
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
            structlog.contextvars.unbind_contextvars(_REQUEST_ID_KEY)
            _current.reset(token)
