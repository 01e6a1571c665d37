"""A circuit breaker in front of the inference service.

Closed: calls go through; ``failure_threshold`` failures in a row open it. Open: calls fail at
once (the caller answers 503 + Retry-After) instead of each waiting for a timeout. After
``open_seconds`` it is half-open: one probe call goes through; its success closes the circuit,
its failure opens it again. So it recovers by itself once inference is back.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(Exception):
    """Refused without trying: the circuit is open (or a half-open probe is in flight)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open, retry in {retry_after:.1f} s")
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1, as the Retry-After header wants them."""
        return str(max(1, math.ceil(self.retry_after)))


class CircuitBreaker:
    """Counts consecutive failures; ``guard()`` wraps one call to the protected service."""

    def __init__(
        self,
        failure_threshold: int = 5,
        open_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        on_state_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self._clock = clock
        self._on_state_change = on_state_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._lock = asyncio.Lock()

    @property
    def state(self) -> BreakerState:
        """The state as of now (an open circuit whose time is up reads as half-open)."""
        if self._state is BreakerState.OPEN and self._remaining_open() <= 0:
            return BreakerState.HALF_OPEN
        return self._state

    def _remaining_open(self) -> float:
        return self._opened_at + self.open_seconds - self._clock()

    def _set_state(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_state_change is not None:
                self._on_state_change(state)

    async def _admit(self) -> bool:
        """Let a call through (True if it is the half-open probe) or raise CircuitOpen."""
        async with self._lock:
            if self._state is BreakerState.CLOSED:
                return False
            if self._state is BreakerState.OPEN:
                remaining = self._remaining_open()
                if remaining > 0:
                    raise CircuitOpen(remaining)
                self._set_state(BreakerState.HALF_OPEN)
            if self._probe_in_flight:
                # Others wait for the probe's verdict rather than piling onto a sick service.
                raise CircuitOpen(min(1.0, self.open_seconds))
            self._probe_in_flight = True
            return True

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        self._set_state(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._failures += 1
        was_probe = self._probe_in_flight
        self._probe_in_flight = False
        probe_failed = was_probe or self._state is BreakerState.HALF_OPEN
        too_many = self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        if probe_failed or too_many:
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set_state(BreakerState.OPEN)

    @asynccontextmanager
    async def guard(self, is_failure: Callable[[BaseException], bool]) -> AsyncIterator[None]:
        """Run the body if admitted; exceptions for which ``is_failure`` is true count against
        the circuit, any other outcome (including exceptions that are not failures) counts for it.
        """
        probe = await self._admit()
        try:
            yield
        except asyncio.CancelledError:
            # A caller that gave up says nothing about the service's health.
            if probe:
                self._probe_in_flight = False
            raise
        except BaseException as exc:
            if is_failure(exc):
                self.record_failure()
            else:
                self.record_success()
            raise
        else:
            self.record_success()
