import asyncio
import contextlib
import socket

import numpy as np
import pytest
from brainscan_gateway.errors import ErrorCode, GatewayError
from brainscan_gateway.upstream.circuit_breaker import BreakerState, CircuitBreaker
from brainscan_gateway.upstream.client import (
    HEADER_LENGTH,
    ClientLimits,
    InferenceClient,
    InferenceFailed,
    InferenceTimeout,
    InferenceUnavailable,
    UpstreamRejected,
)
from v2protocol_bodies import binary_response

FAST = ClientLimits(connect_timeout=0.5, read_timeout=0.5, connect_retries=2, retry_backoff=0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def raw_server(reply: bytes | None, seen: list | None = None):
    """A real loopback HTTP server that answers every request with ``reply`` (None: never)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        body = await reader.readexactly(length)
        if seen is not None:
            seen.append((head, body))
        if reply is None:
            await asyncio.sleep(3600)
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def http_reply(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run_client(base_url: str, coro_factory, breaker: CircuitBreaker | None = None):
    async def scenario():
        client = InferenceClient(base_url, "m", limits=FAST, breaker=breaker)
        try:
            return await coro_factory(client)
        finally:
            await client.aclose()

    return asyncio.run(scenario())


def test_dead_service_is_a_fast_503_and_opens_the_circuit():
    breaker = CircuitBreaker(failure_threshold=2, open_seconds=30)
    tensor = np.zeros((1, 4, 4, 3), np.uint8)

    async def calls(client):
        errors = []
        for _ in range(3):
            with pytest.raises(InferenceUnavailable) as caught:
                await client.infer(tensor, "image", ["probabilities"])
            errors.append(caught.value)
        return errors

    errors = run_client(f"http://127.0.0.1:{free_port()}", calls, breaker)
    assert all(e.status == 503 and e.code is ErrorCode.INFERENCE_UNAVAILABLE for e in errors)
    assert "cannot be reached" in errors[0].message
    assert "paused" in errors[2].message  # refused by the open circuit, not by a connect attempt
    assert int(errors[2].headers["Retry-After"]) >= 29
    assert breaker.state is BreakerState.OPEN


def test_hanging_service_is_a_504_and_counts_against_the_circuit():
    breaker = CircuitBreaker(failure_threshold=1, open_seconds=30)

    async def scenario():
        async with raw_server(None) as url:
            client = InferenceClient(url, "m", limits=FAST, breaker=breaker)
            try:
                with pytest.raises(InferenceTimeout):
                    await client.infer(np.zeros((1, 2), np.float32), "x", ["y"])
            finally:
                await client.aclose()

    asyncio.run(scenario())
    assert breaker.state is BreakerState.OPEN


def test_upstream_500_is_a_502_and_counts_against_the_circuit():
    breaker = CircuitBreaker(failure_threshold=1, open_seconds=30)

    async def scenario():
        async with raw_server(http_reply(500, b"oops")) as url:
            client = InferenceClient(url, "m", limits=FAST, breaker=breaker)
            try:
                with pytest.raises(InferenceFailed) as caught:
                    await client.infer(np.zeros((1, 2), np.float32), "x", ["y"])
            finally:
                await client.aclose()
        return caught.value

    error = asyncio.run(scenario())
    assert error.status == 502 and error.upstream_status == 500
    assert breaker.state is BreakerState.OPEN


def test_upstream_503_passes_retry_after_and_keeps_the_circuit_closed():
    breaker = CircuitBreaker(failure_threshold=1, open_seconds=30)

    async def scenario():
        reply = http_reply(503, b'{"error": "queue full"}', {"Retry-After": "7"})
        async with raw_server(reply) as url:
            client = InferenceClient(url, "m", limits=FAST, breaker=breaker)
            try:
                with pytest.raises(InferenceUnavailable) as caught:
                    await client.infer(np.zeros((1, 2), np.float32), "x", ["y"])
            finally:
                await client.aclose()
        return caught.value

    error = asyncio.run(scenario())
    assert error.headers["Retry-After"] == "7"
    assert breaker.state is BreakerState.CLOSED


def test_upstream_400_is_reported_with_its_message():
    async def scenario():
        reply = http_reply(400, b'{"error": "input \'image\' has shape [1, 2]"}')
        async with raw_server(reply) as url:
            client = InferenceClient(url, "m", limits=FAST)
            try:
                with pytest.raises(UpstreamRejected) as caught:
                    await client.infer(np.zeros((1, 2), np.float32), "x", ["y"])
            finally:
                await client.aclose()
        return caught.value

    error = asyncio.run(scenario())
    assert error.upstream_status == 400
    assert "has shape [1, 2]" in error.message


def test_unknown_model_is_model_not_ready():
    async def scenario():
        async with raw_server(http_reply(404, b'{"error": "no such model"}')) as url:
            client = InferenceClient(url, "m", limits=FAST)
            try:
                with pytest.raises(GatewayError) as caught:
                    await client.model_metadata()
            finally:
                await client.aclose()
        return caught.value

    error = asyncio.run(scenario())
    assert error.code is ErrorCode.MODEL_NOT_READY and error.status == 503


def test_binary_answer_and_request_id_travel_over_http():
    probs = np.array([[0.2, 0.8]], dtype=np.float32)
    body, size = binary_response({"probabilities": probs})
    reply = http_reply(200, body, {HEADER_LENGTH: size, "Content-Type": "application/octet-stream"})
    seen: list = []

    async def scenario():
        async with raw_server(reply, seen) as url:
            client = InferenceClient(url, "m", limits=FAST)
            try:
                return await client.infer(
                    np.zeros((1, 4, 4, 3), np.uint8), "image", ["probabilities"], request_id="abc"
                )
            finally:
                await client.aclose()

    result = asyncio.run(scenario())
    np.testing.assert_array_equal(result.outputs["probabilities"], probs)
    head, sent = seen[0]
    assert b"POST /v2/models/m/infer " in head
    assert b"x-request-id: abc" in head.lower()
    assert sent.endswith(bytes(48))


def test_malformed_answer_is_a_502():
    reply = http_reply(200, b"{}", {HEADER_LENGTH: "999"})

    async def scenario():
        async with raw_server(reply) as url:
            client = InferenceClient(url, "m", limits=FAST)
            try:
                with pytest.raises(InferenceFailed, match="malformed"):
                    await client.infer(np.zeros((1, 2), np.float32), "x", ["y"])
            finally:
                await client.aclose()

    asyncio.run(scenario())


def test_readiness_is_false_when_unreachable():
    assert run_client(f"http://127.0.0.1:{free_port()}", lambda c: c.is_ready()) is False
