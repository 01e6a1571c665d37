"""An httpx transport on aiohttp's connection pool, for the calls to inference.

The client keeps httpx's API and its error types; only the layer that moves bytes changes.
httpx's own transport (httpcore) cost the gateway ~0.8 ms of CPU per call to inference, and
more with many calls in flight; aiohttp's pool costs about a third of that (docs/gateway.md,
Benchmark). Each aiohttp error becomes the httpx error that means the same thing, so the
connect-only retry and the circuit breaker in ``client`` decide exactly as before:
only a failure to connect is a ``ConnectError``/``ConnectTimeout``.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager

import aiohttp
import httpx
from yarl import URL

# Most specific first: aiohttp's connect timeout is also a ServerTimeoutError and an OSError
# subclass sits under ClientConnectionError.
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # a malformed HTTP answer
    (aiohttp.ClientConnectionError, httpx.ReadError),  # connected, then the socket failed
    (aiohttp.ClientError, httpx.RemoteProtocolError),
)


@contextmanager
def _as_httpx_errors(request: httpx.Request):
    try:
        yield
    except httpx.TransportError:
        raise
    except (TimeoutError, aiohttp.ClientError) as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc) or type(exc).__name__, request=request) from exc
        raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc


class AiohttpTransport(httpx.AsyncBaseTransport):
    """At most ``max_connections`` requests in flight (a longer wait than the request's pool
    timeout is a ``PoolTimeout``); idle connections close after ``keepalive_expiry`` seconds.

    aiohttp's pool has no cap on idle connections of its own (they are at most the connections
    in use at the busiest moment): ``keep_alive=False`` closes each one after its request.
    """

    def __init__(
        self, max_connections: int, keep_alive: bool = True, keepalive_expiry: float = 5.0
    ) -> None:
        self._max_connections = max_connections
        self._keep_alive = keep_alive
        self._keepalive_expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple, aiohttp.ClientTimeout] = {}

    def _open_session(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the event loop that runs it.
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry if self._keep_alive else None,
            force_close=not self._keep_alive,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the client's cookies, if any
            auto_decompress=False,  # httpx decodes Content-Encoding, as with its own transport
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        if self._slots.locked():  # wait_for costs a task per call: only pay it when waiting
            try:
                await asyncio.wait_for(self._slots.acquire(), timeouts.get("pool"))
            except TimeoutError:
                message = "no free connection to inference"
                raise httpx.PoolTimeout(message, request=request) from None
        else:
            await self._slots.acquire()
        try:
            if self._session is None:
                self._session = self._open_session()
            body = await request.aread()
            with _as_httpx_errors(request):
                async with self._session.request(
                    request.method,
                    URL(str(request.url), encoded=True),  # already quoted by httpx
                    headers=[
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                    ],
                    data=body or None,
                    allow_redirects=False,
                    timeout=self._timeout(timeouts),
                ) as answer:
                    content = await answer.read()
                    return httpx.Response(
                        answer.status,
                        headers=list(answer.raw_headers),
                        content=content,
                        request=request,
                        extensions={"http_version": b"HTTP/1.1"},
                    )
        finally:
            self._slots.release()

    def _timeout(self, timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeouts.get("connect"), timeouts.get("read"), timeouts.get("write"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            connect, read, write = key
            # aiohttp has no write timeout: its read timer runs from the send, so a server
            # that stops reading is caught by it as well.
            read = max(read or 0, write or 0) or None
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)
            self._timeouts[key] = timeout
        return timeout

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
