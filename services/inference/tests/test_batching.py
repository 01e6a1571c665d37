"""The dynamic batcher alone: order, partial batches, delay, limits, failures, cancellation."""

from __future__ import annotations

import asyncio
import threading

import pytest
from brainscan_inference.batching import BatcherClosed, DynamicBatcher, QueueFull

pytestmark = pytest.mark.anyio


class Recorder:
    """A stand-in model: records each batch, answers payload * 10, can be held or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self.fail_on: set[int] = set()
        self.threads: set[str] = set()
        self.running = 0
        self.most_running = 0
        self._count = threading.Lock()

    def __call__(self, payloads):
        self.threads.add(threading.current_thread().name)
        with self._count:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.batches.append(list(payloads))
        self.started.set()
        try:
            self.release.wait(10)
            if self.fail_on & set(payloads):
                raise RuntimeError("model exploded")
            return [p * 10 for p in payloads]
        finally:
            with self._count:
                self.running -= 1


async def _until(condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.001)


def make(recorder: Recorder, **options) -> DynamicBatcher[int, int]:
    defaults = {"max_batch_size": 8, "queue_capacity": 100}
    return DynamicBatcher(recorder, **{**defaults, **options})


async def close_while_held(recorder: Recorder, batcher: DynamicBatcher[int, int]) -> None:
    """Close while the model holds a batch: new work is refused at once, then let it finish."""
    closing = asyncio.create_task(batcher.close())
    await asyncio.sleep(0.01)
    with pytest.raises(BatcherClosed):
        await batcher.submit(9)
    recorder.release.set()
    await closing


def held(**options) -> tuple[Recorder, DynamicBatcher[int, int]]:
    """A started batcher whose model holds each batch until ``recorder.release`` is set."""
    recorder = Recorder()
    recorder.release.clear()
    batcher = make(recorder, **options)
    batcher.start()
    return recorder, batcher


async def test_single_request_runs_alone_without_waiting() -> None:
    recorder = Recorder()
    batcher = make(recorder, max_queue_delay=0.0)
    batcher.start()
    assert await batcher.submit(3) == 30
    assert recorder.batches == [[3]]
    await batcher.close()


async def test_requests_queued_while_model_busy_form_one_batch_in_order() -> None:
    recorder, batcher = held()
    first = asyncio.create_task(batcher.submit(0))
    await _until(recorder.started.is_set)
    rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 6)]
    await _until(lambda: batcher.queue_depth == 5)
    recorder.release.set()
    results = await asyncio.gather(first, *rest)
    assert results == [0, 10, 20, 30, 40, 50]
    assert recorder.batches == [[0], [1, 2, 3, 4, 5]]
    await batcher.close()


async def test_batches_never_exceed_max_batch_size_counting_item_sizes() -> None:
    recorder, batcher = held(max_batch_size=4)
    blocker = asyncio.create_task(batcher.submit(0))
    await _until(recorder.started.is_set)
    # sizes 3, 2, 1, 1: 3 then (2 does not fit) -> [3], then [2, 1, 1]
    tasks = [asyncio.create_task(batcher.submit(p, size=s)) for p, s in [(1, 3), (2, 2), (3, 1)]]
    tasks.append(asyncio.create_task(batcher.submit(4, size=1)))
    await _until(lambda: batcher.queue_depth == 4)
    recorder.release.set()
    assert await asyncio.gather(blocker, *tasks) == [0, 10, 20, 30, 40]
    assert recorder.batches == [[0], [1], [2, 3, 4]]
    await batcher.close()


async def test_a_delay_lets_a_partial_batch_wait_for_more_requests() -> None:
    recorder = Recorder()
    batcher = make(recorder, max_queue_delay=0.5, max_batch_size=3)
    batcher.start()
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(batcher.submit(2))
    third = asyncio.create_task(batcher.submit(3))  # fills the batch: no need to wait longer
    assert await asyncio.gather(first, second, third) == [10, 20, 30]
    assert recorder.batches == [[1, 2, 3]]
    await batcher.close()


async def test_a_delay_sends_a_partial_batch_when_it_expires() -> None:
    recorder = Recorder()
    batcher = make(recorder, max_queue_delay=0.05, max_batch_size=8)
    batcher.start()
    assert await asyncio.gather(batcher.submit(1), batcher.submit(2)) == [10, 20]
    assert recorder.batches == [[1, 2]]
    await batcher.close()


async def test_full_queue_refuses_with_queue_full() -> None:
    recorder, batcher = held(queue_capacity=2)
    running = asyncio.create_task(batcher.submit(0))
    await _until(recorder.started.is_set)
    waiting = [asyncio.create_task(batcher.submit(i)) for i in (1, 2)]
    await _until(lambda: batcher.queue_depth == 2)
    with pytest.raises(QueueFull):
        await batcher.submit(3)
    recorder.release.set()
    assert await asyncio.gather(running, *waiting) == [0, 10, 20]
    await batcher.close()


async def test_a_failing_batch_answers_every_caller_in_it_and_the_next_batch_still_runs() -> None:
    recorder = Recorder()
    recorder.release.clear()
    recorder.fail_on = {2}
    batcher = make(recorder)
    batcher.start()
    blocker = asyncio.create_task(batcher.submit(0))
    await _until(recorder.started.is_set)
    doomed = [asyncio.create_task(batcher.submit(i)) for i in (1, 2, 3)]
    await _until(lambda: batcher.queue_depth == 3)
    recorder.release.set()
    assert await blocker == 0
    for task in doomed:
        with pytest.raises(RuntimeError, match="model exploded"):
            await task
    assert await batcher.submit(7) == 70
    await batcher.close()


async def test_wrong_result_count_is_an_error_for_every_caller() -> None:
    batcher: DynamicBatcher[int, int] = DynamicBatcher(
        lambda payloads: [1], max_batch_size=4, queue_capacity=4
    )
    batcher.start()
    with pytest.raises(RuntimeError, match="returned 1 results for"):
        await asyncio.gather(batcher.submit(1), batcher.submit(2))
    await batcher.close()


async def test_cancelled_waiters_are_skipped_and_leave_the_queue() -> None:
    recorder, batcher = held()
    blocker = asyncio.create_task(batcher.submit(0))
    await _until(recorder.started.is_set)
    gone = asyncio.create_task(batcher.submit(1))
    kept = asyncio.create_task(batcher.submit(2))
    await _until(lambda: batcher.queue_depth == 2)
    gone.cancel()
    await _until(lambda: batcher.queue_depth == 1)
    recorder.release.set()
    assert await asyncio.gather(blocker, kept) == [0, 20]
    assert gone.cancelled()
    assert recorder.batches == [[0], [2]]
    await batcher.close()


async def test_a_caller_cancelled_during_its_batch_does_not_disturb_the_others() -> None:
    recorder, batcher = held()
    gone = asyncio.create_task(batcher.submit(1))
    kept = asyncio.create_task(batcher.submit(2))
    await _until(recorder.started.is_set)
    gone.cancel()
    recorder.release.set()
    assert await kept == 20
    assert gone.cancelled()
    await batcher.close()


async def test_model_runs_in_a_worker_thread_leaving_the_event_loop_free() -> None:
    recorder, batcher = held(name="worker")
    task = asyncio.create_task(batcher.submit(1))
    await _until(recorder.started.is_set)
    ticks = 0
    for _ in range(5):  # the loop keeps running while the model is held
        await asyncio.sleep(0.001)
        ticks += 1
    assert ticks == 5 and not task.done()
    recorder.release.set()
    assert await task == 10
    assert all(name.startswith("worker") for name in recorder.threads)
    await batcher.close()


async def test_close_finishes_queued_work_then_refuses_new_requests() -> None:
    recorder, batcher = held()
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    await _until(recorder.started.is_set)
    await close_while_held(recorder, batcher)
    assert await asyncio.gather(*tasks) == [0, 10, 20]


async def test_observer_sees_each_batch_size() -> None:
    seen: list[int] = []
    batcher: DynamicBatcher[int, int] = DynamicBatcher(
        lambda payloads: payloads,
        max_batch_size=8,
        queue_capacity=8,
        observer=lambda size, seconds: seen.append(size),
    )
    batcher.start()
    await batcher.submit(1, size=3)
    await batcher.close()
    assert seen == [3]


async def test_two_workers_compute_two_batches_at_once() -> None:
    recorder, batcher = held(workers=2, name="pair")
    first = asyncio.create_task(batcher.submit(0))
    await _until(lambda: recorder.running == 1)
    # The first worker is held inside the model; the second takes what arrives next.
    rest = [asyncio.create_task(batcher.submit(i)) for i in (1, 2)]
    await _until(lambda: recorder.running == 2)
    assert batcher.busy and batcher.queue_depth == 0
    recorder.release.set()
    assert await asyncio.gather(first, *rest) == [0, 10, 20]
    assert recorder.batches == [[0], [1, 2]]
    assert recorder.most_running == 2 and len(recorder.threads) == 2
    assert not batcher.busy
    await batcher.close()


async def test_one_worker_computes_one_batch_at_a_time() -> None:
    recorder, batcher = held(workers=1)
    first = asyncio.create_task(batcher.submit(0))
    await _until(recorder.started.is_set)
    second = asyncio.create_task(batcher.submit(1))
    await _until(lambda: batcher.queue_depth == 1)  # waits: the only worker is busy
    assert recorder.running == 1
    recorder.release.set()
    assert await asyncio.gather(first, second) == [0, 10]
    assert recorder.most_running == 1
    await batcher.close()


async def test_with_idle_workers_a_delay_still_fills_one_batch() -> None:
    recorder = Recorder()
    batcher = make(recorder, workers=2, max_queue_delay=0.5, max_batch_size=3)
    batcher.start()
    # Three arrivals within the delay: one worker forms the batch while the other waits its
    # turn, so they are not split into two partial batches.
    tasks = []
    for i in range(3):
        tasks.append(asyncio.create_task(batcher.submit(i)))
        await asyncio.sleep(0.01)
    assert await asyncio.gather(*tasks) == [0, 10, 20]
    assert recorder.batches == [[0, 1, 2]]
    await batcher.close()


async def test_a_failing_batch_leaves_the_batch_beside_it_alone() -> None:
    recorder, batcher = held(workers=2)
    recorder.fail_on = {0}
    failing = asyncio.create_task(batcher.submit(0))
    await _until(lambda: recorder.running == 1)
    healthy = asyncio.create_task(batcher.submit(1))
    await _until(lambda: recorder.running == 2)
    recorder.release.set()
    with pytest.raises(RuntimeError, match="model exploded"):
        await failing
    assert await healthy == 10
    await batcher.close()


async def test_close_with_several_workers_finishes_all_queued_work() -> None:
    recorder, batcher = held(workers=2, max_batch_size=2)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(7)]
    await _until(lambda: recorder.running == 2)
    await close_while_held(recorder, batcher)
    assert await asyncio.gather(*tasks) == [i * 10 for i in range(7)]
    assert sorted(p for batch in recorder.batches for p in batch) == list(range(7))
    assert max(len(batch) for batch in recorder.batches) <= 2


@pytest.mark.parametrize(
    "options",
    [
        {"max_batch_size": 0, "queue_capacity": 1},
        {"max_batch_size": 1, "queue_capacity": 0},
        {"max_batch_size": 1, "queue_capacity": 1, "workers": 0},
        {"max_batch_size": 1, "queue_capacity": 1, "max_queue_delay": -1.0},
    ],
)
async def test_settings_out_of_range_are_refused(options) -> None:
    with pytest.raises(ValueError):
        DynamicBatcher(lambda p: p, **options)
