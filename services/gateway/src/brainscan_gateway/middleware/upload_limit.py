"""Refuse a too-large prediction upload while it streams in, before it is all read.

A declared Content-Length over the limit is refused before one byte of the body is read; a
body without one (chunked) is counted as it arrives and refused as soon as it passes the limit.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ErrorCode, GatewayError


class UploadTooLarge(GatewayError):
    def __init__(self, limit: int, hint: str = "send a smaller file") -> None:
        super().__init__(
            ErrorCode.UPLOAD_TOO_LARGE,
            f"the upload is larger than the limit of {limit:,} bytes: {hint}",
            413,
        )


class UploadLimitMiddleware:
    """Applies ``limit`` to request bodies of the given (method, path) pairs; a path may be a
    compiled pattern (a route with a path parameter, or a prefix and the paths below it).
    ``hint`` ends the 413's message: what the sender can do instead."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        routes: frozenset[tuple[str, str | re.Pattern[str]]],
        hint: str = "send a smaller file",
    ) -> None:
        self.app = app
        self.limit = limit
        self.routes = routes
        self.hint = hint

    def _applies(self, method: str, path: str) -> bool:
        for route_method, route_path in self.routes:
            if route_method != method:
                continue
            if route_path == path if isinstance(route_path, str) else route_path.match(path):
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._applies(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            # Raised inside the app (at its first read), so the error handlers shape the answer.
            limit, hint = self.limit, self.hint

            async def refuse() -> Message:
                raise UploadTooLarge(limit, hint)

            await self.app(scope, refuse, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise UploadTooLarge(self.limit, self.hint)
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
