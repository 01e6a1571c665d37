import asyncio

import pytest
from brainscan_gateway.upstream.circuit_breaker import BreakerState, CircuitBreaker, CircuitOpen


class Clock:
    """A clock the test moves by hand, so no test waits for real seconds."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Boom(Exception):
    pass


def is_boom(exc: BaseException) -> bool:
    return isinstance(exc, Boom)


async def call(breaker: CircuitBreaker, fail: bool) -> str:
    async with breaker.guard(is_boom):
        if fail:
            raise Boom()
    return "ok"


async def fail_times(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            await call(breaker, fail=True)


def test_opens_after_consecutive_failures_and_fails_fast():
    async def scenario():
        clock = Clock()
        breaker = CircuitBreaker(failure_threshold=3, open_seconds=10, clock=clock)
        await fail_times(breaker, 2)
        assert breaker.state is BreakerState.CLOSED
        await fail_times(breaker, 1)
        assert breaker.state is BreakerState.OPEN
        clock.now += 4
        with pytest.raises(CircuitOpen) as caught:
            await call(breaker, fail=False)
        assert caught.value.retry_after == pytest.approx(6)
        assert caught.value.retry_after_header == "6"

    asyncio.run(scenario())


def test_a_success_resets_the_count():
    async def scenario():
        breaker = CircuitBreaker(failure_threshold=3, clock=Clock())
        await fail_times(breaker, 2)
        assert await call(breaker, fail=False) == "ok"
        await fail_times(breaker, 2)
        assert breaker.state is BreakerState.CLOSED

    asyncio.run(scenario())


def test_half_open_probe_success_closes():
    async def scenario():
        clock = Clock()
        changes = []
        breaker = CircuitBreaker(2, 5, clock=clock, on_state_change=changes.append)
        await fail_times(breaker, 2)
        clock.now += 5
        assert breaker.state is BreakerState.HALF_OPEN
        assert await call(breaker, fail=False) == "ok"
        assert breaker.state is BreakerState.CLOSED
        assert changes == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]

    asyncio.run(scenario())


def test_half_open_probe_failure_reopens_for_a_full_period():
    async def scenario():
        clock = Clock()
        breaker = CircuitBreaker(2, 5, clock=clock)
        await fail_times(breaker, 2)
        clock.now += 6
        await fail_times(breaker, 1)
        assert breaker.state is BreakerState.OPEN
        with pytest.raises(CircuitOpen) as caught:
            await call(breaker, fail=False)
        assert caught.value.retry_after == pytest.approx(5)

    asyncio.run(scenario())


def test_only_one_probe_at_a_time():
    async def scenario():
        clock = Clock()
        breaker = CircuitBreaker(1, 5, clock=clock)
        await fail_times(breaker, 1)
        clock.now += 5
        release = asyncio.Event()

        async def slow_probe():
            async with breaker.guard(is_boom):
                await release.wait()

        probe = asyncio.create_task(slow_probe())
        await asyncio.sleep(0)
        with pytest.raises(CircuitOpen):
            await call(breaker, fail=False)
        release.set()
        await probe
        assert breaker.state is BreakerState.CLOSED

    asyncio.run(scenario())


def test_errors_that_are_not_failures_do_not_open():
    async def scenario():
        breaker = CircuitBreaker(1, clock=Clock())
        for _ in range(3):
            with pytest.raises(KeyError):
                async with breaker.guard(is_boom):
                    raise KeyError("a client mistake, not a sick service")
        assert breaker.state is BreakerState.CLOSED

    asyncio.run(scenario())


def test_cancelled_probe_frees_the_half_open_slot():
    async def scenario():
        clock = Clock()
        breaker = CircuitBreaker(1, 5, clock=clock)
        await fail_times(breaker, 1)
        clock.now += 5

        async def hanging_probe():
            async with breaker.guard(is_boom):
                await asyncio.sleep(3600)

        probe = asyncio.create_task(hanging_probe())
        await asyncio.sleep(0)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert await call(breaker, fail=False) == "ok"

    asyncio.run(scenario())


def test_threshold_must_be_positive():
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
