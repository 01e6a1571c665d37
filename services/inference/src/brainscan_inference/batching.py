"""Dynamic batching: gather concurrent requests into one model call. Knows nothing of HTTP.

When a model worker becomes free, its next batch is whatever is queued (up to
``max_batch_size`` items counted by their ``size``), so batching adds no waiting time unless
``max_queue_delay`` asks for it; a delay lets a partial batch wait that long for more work.
Model calls run in worker threads so the event loop keeps accepting requests while onnxruntime
computes. ``workers`` batches may be computed at once (onnxruntime sessions are thread-safe and
release the GIL): with one single-threaded call per core, a small model keeps every core busy,
where one call at a time leaves all but one idle between its few parallel operators.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

Payload = TypeVar("Payload")
Result = TypeVar("Result")


class QueueFull(Exception):
    """The queue holds ``queue_capacity`` requests already; the caller should retry later."""


class BatcherClosed(Exception):
    """The batcher stopped taking work (its model was replaced); submit to the new one."""


@dataclass(eq=False)
class _Pending(Generic[Payload, Result]):
    payload: Payload
    size: int
    future: asyncio.Future[Result]


BatchObserver = Callable[[int, float], None]
"""Called after each model call with the batch size and the seconds the call took."""


class DynamicBatcher(Generic[Payload, Result]):
    """Runs ``run_batch(payloads) -> results`` (same order, same length) on gathered requests."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[Payload]], Sequence[Result]],
        *,
        max_batch_size: int,
        queue_capacity: int,
        max_queue_delay: float = 0.0,
        workers: int = 1,
        observer: BatchObserver | None = None,
        name: str = "batcher",
    ) -> None:
        if max_batch_size < 1 or queue_capacity < 1 or workers < 1 or max_queue_delay < 0:
            raise ValueError("max_batch_size, queue_capacity and workers must be >= 1, delay >= 0")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.queue_capacity = queue_capacity
        self.max_queue_delay = max_queue_delay
        self._observer = observer
        self._name = name
        self._queue: deque[_Pending[Payload, Result]] = deque()
        self._arrived = asyncio.Event()
        # One worker at a time waits for and forms the next batch, so a delay fills one batch
        # instead of splitting the arrivals between idle workers.
        self._forming = asyncio.Lock()
        self._closing = False
        self.workers = workers
        self._loops: list[asyncio.Task[None]] = []
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._running = 0

    @property
    def queue_depth(self) -> int:
        """Requests waiting for the model (not counting the batches being computed)."""
        return len(self._queue)

    @property
    def busy(self) -> bool:
        """Whether a batch is being computed."""
        return self._running > 0

    def start(self) -> None:
        if not self._loops:
            loop = asyncio.get_running_loop()
            self._loops = [
                loop.create_task(self._serve(), name=f"{self._name}-worker-{index}")
                for index in range(self.workers)
            ]

    async def submit(self, payload: Payload, size: int = 1) -> Result:
        """Queue one request of ``size`` items and wait for its result (or the batch's error)."""
        if self._closing or not self._loops:
            raise BatcherClosed(f"{self._name} is not taking requests")
        if size < 1 or size > self.max_batch_size:
            raise ValueError(f"size {size} outside 1..{self.max_batch_size}")
        if len(self._queue) >= self.queue_capacity:
            raise QueueFull(f"{len(self._queue)} requests already waiting")
        pending = _Pending(payload, size, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._arrived.set()
        try:
            return await pending.future
        except asyncio.CancelledError:
            # The caller went away: drop the request if no batch has taken it yet.
            with contextlib.suppress(ValueError):
                self._queue.remove(pending)
            raise

    async def close(self) -> None:
        """Stop taking requests, finish every queued one, then stop the worker threads."""
        self._closing = True
        self._arrived.set()
        await asyncio.gather(*self._loops)
        self._executor.shutdown(wait=True)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            async with self._forming:
                while not self._queue and not self._closing:
                    self._arrived.clear()
                    await self._arrived.wait()
                if not self._queue:
                    return  # closing and drained
                batch = await self._gather()
            if not batch:
                continue
            size = sum(p.size for p in batch)
            self._running += size
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run_batch, [p.payload for p in batch]
                )
                if len(results) != len(batch):
                    raise RuntimeError(
                        f"run_batch returned {len(results)} results for {len(batch)} requests"
                    )
            except Exception as exc:  # one failure answers every caller in the batch
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
            else:
                for pending, result in zip(batch, results, strict=True):
                    if not pending.future.done():  # skip callers cancelled meanwhile
                        pending.future.set_result(result)
            finally:
                self._running -= size
            if self._observer is not None:
                self._observer(size, time.perf_counter() - started)

    async def _gather(self) -> list[_Pending[Payload, Result]]:
        """Take queued requests that fit; with a delay, wait up to it for more to arrive."""
        batch: list[_Pending[Payload, Result]] = []
        total = 0
        deadline = time.monotonic() + self.max_queue_delay
        while True:
            while self._queue and total + self._queue[0].size <= self.max_batch_size:
                pending = self._queue.popleft()
                if pending.future.done():  # cancelled before we got to it
                    continue
                batch.append(pending)
                total += pending.size
            if total >= self.max_batch_size or self._queue or self._closing:
                break  # full, or the next request does not fit, or draining
            remaining = deadline - time.monotonic()
            if not batch or remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
        return [p for p in batch if not p.future.done()]
