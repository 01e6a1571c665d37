import pytest
from brainscan_gateway.middleware.rate_limit import RateLimiter, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_steady_rate_per_client():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.check("a") for _ in range(3)] == [None, None, None]
    wait = limiter.check("a")
    assert wait == pytest.approx(1.0)
    assert limiter.check("b") is None  # another client is not affected
    clock.now += 1.0
    assert limiter.check("a") is None
    assert limiter.check("a") is not None


def test_tokens_never_exceed_the_burst():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=2, clock=clock)
    limiter.check("a")
    clock.now += 3600
    assert [limiter.check("a") is None for _ in range(3)] == [True, True, False]


def test_zero_rate_disables_the_limit():
    limiter = RateLimiter(per_minute=0, burst=1)
    assert not limiter.enabled
    assert all(limiter.check("a") is None for _ in range(100))


def test_memory_is_bounded():
    limiter = RateLimiter(per_minute=60, burst=1, max_clients=10)
    for index in range(100):
        limiter.check(f"client-{index}")
    assert len(limiter._buckets) == 10


def test_retry_after_is_whole_seconds_at_least_one():
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(2.2) == "3"
