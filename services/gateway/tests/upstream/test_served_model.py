"""The manifest cache, against the real inference service."""

import asyncio

import pytest
from brainscan_gateway.errors import ErrorCode, GatewayError
from brainscan_gateway.upstream.circuit_breaker import CircuitBreaker
from brainscan_gateway.upstream.client import ClientLimits, InferenceClient
from brainscan_gateway.upstream.served_model import ServedModel
from gateway_servers import MODEL_NAME

FAST = ClientLimits(connect_timeout=0.5, read_timeout=2, connect_retries=0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_manifest_is_fetched_once_then_cached_until_stale(inference):
    async def scenario():
        client = InferenceClient(inference.url, MODEL_NAME, limits=FAST)
        clock = Clock()
        served = ServedModel(client, refresh_seconds=30, clock=clock)
        changes = []
        served.on_change = changes.append
        try:
            first = await served.get()
            assert first.name == MODEL_NAME and first.version == "1"
            assert await served.get() is first  # cached: same object, no new fetch
            clock.now += 31
            again = await served.get()
            assert again is not first and again == first
            assert len(changes) == 1  # the version did not change
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_stale_manifest_is_kept_while_inference_is_unreachable(inference):
    async def scenario():
        clock = Clock()
        good = InferenceClient(inference.url, MODEL_NAME, limits=FAST)
        served = ServedModel(good, refresh_seconds=1, clock=clock)
        known = await served.get()
        await good.aclose()
        dead = InferenceClient("http://127.0.0.1:9", MODEL_NAME, limits=FAST)
        served._client = dead
        clock.now += 5
        try:
            assert await served.get() is known
            with pytest.raises(GatewayError) as caught:
                await served.refresh()
            assert caught.value.code is ErrorCode.INFERENCE_UNAVAILABLE
        finally:
            await dead.aclose()

    asyncio.run(scenario())


def test_unknown_model_is_model_not_ready(inference):
    async def scenario():
        client = InferenceClient(
            inference.url, "no-such-model", limits=FAST, breaker=CircuitBreaker()
        )
        try:
            with pytest.raises(GatewayError) as caught:
                await ServedModel(client, refresh_seconds=30).get()
        finally:
            await client.aclose()
        return caught.value

    error = asyncio.run(scenario())
    assert error.code is ErrorCode.MODEL_NOT_READY and error.status == 503
