"""The aiohttp-backed transport under the httpx client: pooling, and errors that mean what
httpx's own would (only a failure to connect may be retried), against real loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import aiohttp
import httpx
import numpy as np
import pytest
from brainscan_gateway.upstream.circuit_breaker import BreakerState, CircuitBreaker
from brainscan_gateway.upstream.client import (
    ClientLimits,
    InferenceClient,
    InferenceFailed,
    InferenceUnavailable,
)
from brainscan_gateway.upstream.transport import AiohttpTransport, _as_httpx_errors

FAST = ClientLimits(connect_timeout=0.5, read_timeout=0.5, connect_retries=2, retry_backoff=0.01)
OK_REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


@contextlib.asynccontextmanager
async def counting_server(behaviour: str):
    """A loopback HTTP/1.1 server that counts connections and requests.

    ``behaviour``: "answer" (keep-alive 200s), "drop" (read the request, close without a
    word), "garbage" (answer with something that is not HTTP), "slow" (answer after 0.3 s).
    """
    stats = {"connections": 0, "requests": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats["connections"] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                await reader.readexactly(length)
                stats["requests"] += 1
                if behaviour == "drop":
                    break
                if behaviour == "garbage":
                    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
                    break
                if behaviour == "slow":
                    await asyncio.sleep(0.3)
                writer.write(OK_REPLY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", stats
    finally:
        server.close()


def test_sequential_calls_reuse_one_connection():
    async def scenario():
        async with counting_server("answer") as (url, stats):
            client = InferenceClient(url, "m", limits=FAST)
            try:
                for _ in range(5):
                    assert await client.manifest() == {}
            finally:
                await client.aclose()
            return stats

    assert asyncio.run(scenario()) == {"connections": 1, "requests": 5}


def test_no_keepalive_opens_a_connection_per_call():
    limits = ClientLimits(connect_timeout=0.5, read_timeout=0.5, max_keepalive_connections=0)

    async def scenario():
        async with counting_server("answer") as (url, stats):
            client = InferenceClient(url, "m", limits=limits)
            try:
                for _ in range(3):
                    await client.manifest()
            finally:
                await client.aclose()
            return stats

    assert asyncio.run(scenario()) == {"connections": 3, "requests": 3}


@pytest.mark.parametrize("behaviour", ["drop", "garbage"])
def test_failure_after_the_request_was_sent_is_not_retried_and_counts(behaviour):
    """Connected and sent: sending again could run it twice, so it is a 502, once."""
    breaker = CircuitBreaker(failure_threshold=1, open_seconds=30)

    async def scenario():
        async with counting_server(behaviour) as (url, stats):
            client = InferenceClient(url, "m", limits=FAST, breaker=breaker)
            try:
                with pytest.raises(InferenceFailed) as caught:
                    await client.infer(np.zeros((1, 2), np.float32), "x", ["y"])
            finally:
                await client.aclose()
            return caught.value, stats

    error, stats = asyncio.run(scenario())
    assert error.status == 502
    assert "connection to the inference service failed" in error.message
    assert stats["requests"] == 1
    assert breaker.state is BreakerState.OPEN


def test_no_free_connection_within_the_pool_timeout_is_a_503():
    limits = ClientLimits(max_connections=1, pool_timeout=0.05, read_timeout=5)

    async def scenario():
        async with counting_server("slow") as (url, stats):
            client = InferenceClient(url, "m", limits=limits)
            try:
                first = asyncio.create_task(client.manifest())
                await asyncio.sleep(0.05)  # the first call holds the only connection
                with pytest.raises(InferenceUnavailable) as caught:
                    await client.manifest()
                assert await first == {}
            finally:
                await client.aclose()
            return caught.value, stats

    error, stats = asyncio.run(scenario())
    assert "too many requests are waiting" in error.message
    assert stats["requests"] == 1


def test_refused_connection_is_retried_then_a_503():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario():
        client = InferenceClient(f"http://127.0.0.1:{port}", "m", limits=FAST)
        try:
            with pytest.raises(InferenceUnavailable, match="cannot be reached"):
                await client.manifest()
        finally:
            await client.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout),
        (
            aiohttp.ClientConnectorError(
                aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None),
                OSError(111, "refused"),
            ),
            httpx.ConnectError,
        ),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError("cut"), httpx.ReadError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (TimeoutError(), httpx.ReadTimeout),
    ],
)
def test_aiohttp_errors_become_the_httpx_error_of_the_same_meaning(error, expected):
    request = httpx.Request("POST", "http://inference/v2/models/m/infer")
    with pytest.raises(httpx.TransportError) as caught, _as_httpx_errors(request):
        raise error
    assert type(caught.value) is expected
    assert caught.value.__cause__ is error


def test_transport_closes_cleanly_without_having_been_used():
    asyncio.run(AiohttpTransport(max_connections=4).aclose())
