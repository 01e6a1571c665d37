"""Shadow mirroring: answered predictions sent again to the challenger, off the answer path.

Inference holds the registry's ``challenger`` beside production and answers it only by version
(``GET /v2/models/{name}/challenger/manifest`` names it). After each answer the predictor
*offers* the prepared image here: a share of them (``fraction``) is put on a bounded queue,
without waiting, and a few workers send each to the challenger and compare its answer with the
champion's. The client never waits for, nor sees, the challenger's answer.

Under load mirrored work is what gives: a full queue drops the newest offer, and a busy
inference (503) or a replica that does not hold the challenger yet drops the pair; both are
counted by reason. The challenger has its own HTTP client and circuit breaker, so a failing
challenger opens its own circuit, never the one in front of the answers.

What is recorded per pair: label agreement, both confidences, both out-of-distribution
verdicts and both inference latencies, in Prometheus (counters and the champion-by-challenger
label matrix), in one ECS log event, and in the per-version figures ``GET /api/v1/model``
shows and ``brainscan-train promote`` weighs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from anyio import CapacityLimiter, to_thread
from brainscan_manifest import InputSpec, Manifest
from brainscan_servicekit import get_logger
from pydantic import ValidationError

from ..errors import GatewayError
from ..imaging.decoding import DecodedImage
from ..metrics import GatewayMetrics
from ..upstream.circuit_breaker import CircuitOpen
from ..upstream.client import InferenceClient, InferenceUnavailable, ModelNotServed
from . import outputs
from .distribution_check import DistributionCheck, check_distribution
from .preparation import PreparedImage, prepare_for

_log = get_logger("brainscan.shadow")


@dataclass(frozen=True)
class ChampionAnswer:
    """What the served model answered, to compare the challenger's answer with."""

    version: str
    label: str
    confidence: float
    check: DistributionCheck
    latency: float
    """Seconds of the champion's inference call."""


@dataclass(frozen=True)
class _Job:
    """One mirrored prediction waiting in the queue: the model input the champion got, and
    the decoded pixels only when the challenger preprocesses differently (the queue then holds
    up to ``queue_size`` decoded uploads; otherwise only model inputs, tens of KB each)."""

    tensor: np.ndarray
    spec: InputSpec
    size: tuple[int, int]
    decoded: DecodedImage | None
    champion: ChampionAnswer
    request_id: str


@dataclass
class ShadowStats:
    """The comparison figures of one challenger version, since this gateway started."""

    version: str
    mirrored: int = 0
    """Pairs compared: the challenger answered."""
    agreed: int = 0
    """Pairs whose labels were the same."""
    dropped: int = 0
    """Offers not compared because the gateway or inference was too busy (or the replica
    asked did not hold the challenger yet)."""
    failed: int = 0
    """Mirrored calls the challenger failed (error, timeout, unusable answer)."""
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(champion label, challenger label) -> pairs."""
    distribution: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(champion verdict, challenger verdict) -> pairs; verdicts as DistributionCheck.result."""

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.mirrored if self.mirrored else None

    def report(self) -> dict:
        matrix: dict[str, dict[str, int]] = {}
        for (champion, challenger), n in sorted(self.confusion.items()):
            matrix.setdefault(champion, {})[challenger] = n
        verdicts: dict[str, dict[str, int]] = {}
        for (champion, challenger), n in sorted(self.distribution.items()):
            verdicts.setdefault(champion, {})[challenger] = n
        return {
            "version": self.version,
            "mirrored": self.mirrored,
            "dropped": self.dropped,
            "failed": self.failed,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "confusion": matrix,
            "distribution": verdicts,
        }


class ShadowMirror:
    """Follows inference's challenger and compares it with the champion on mirrored images."""

    def __init__(
        self,
        client: InferenceClient,
        metrics: GatewayMetrics,
        *,
        fraction: float,
        queue_size: int,
        concurrency: int,
        refresh_seconds: float,
        timeout: float = 5.0,
        answers_busy: Callable[[], bool] = lambda: False,
        sample: Callable[[], float] = random.random,
        max_versions: int = 4,
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.fraction = fraction
        self.refresh_seconds = refresh_seconds
        self.timeout = timeout
        """Seconds a mirrored call may wait for a connection and its answer."""
        self.answers_busy = answers_busy
        """True while the gateway answers more predictions at once than it mirrors beside:
        mirrored work then gives way (dropped, counted), so that it never slows an answer on
        cores the answers need."""
        self.concurrency = concurrency
        self._sample = sample
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self._challenger: Manifest | None = None
        self._stats: OrderedDict[str, ShadowStats] = OrderedDict()
        self._max_versions = max_versions
        self._tasks: list[asyncio.Task[None]] = []
        self._refreshed = asyncio.Event()
        # Its own pixel-work slot: re-preprocessing for a challenger with another input spec
        # must not take the slots the answers decode in.
        self._image_work = CapacityLimiter(1)
        metrics.shadow_queue_depth.set_function(self._queue.qsize)

    @property
    def challenger(self) -> Manifest | None:
        """The challenger being mirrored to (None: none in shadow, or mirroring is off)."""
        return self._challenger

    def stats(self, version: str) -> ShadowStats:
        stats = self._stats.get(version)
        if stats is None:
            stats = self._stats[version] = ShadowStats(version)
            while len(self._stats) > self._max_versions:
                self._stats.popitem(last=False)
        return stats

    def report(self) -> dict | None:
        """The current challenger's figures (None without a challenger)."""
        if self._challenger is None:
            return None
        return {"fraction": self.fraction, **self.stats(self._challenger.version).report()}

    # --- the answer path: never waits, never raises ------------------------------------------

    def offer(self, prepared: PreparedImage, champion: ChampionAnswer, request_id: str) -> None:
        challenger = self._challenger
        if challenger is None or champion.version == challenger.version:
            return
        if self.fraction < 1.0 and self._sample() >= self.fraction:
            return
        if self.answers_busy():
            self._drop(challenger.version, "answers_busy")
            return
        pixels = prepared.decoded if prepared.spec != challenger.input else None
        job = _Job(prepared.tensor, prepared.spec, prepared.decoded.size, pixels, champion,
                   request_id)  # fmt: skip
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self._drop(challenger.version, "queue_full")

    # --- the background --------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow_challenger(), name="shadow-follow")]
        self._tasks += [
            asyncio.create_task(self._work(), name=f"shadow-worker-{n}")
            for n in range(self.concurrency)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _follow_challenger(self) -> None:
        while True:
            await self.refresh()
            # Next refresh after refresh_seconds, or at once when a replica no longer held it.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refreshed.wait(), self.refresh_seconds)
            self._refreshed.clear()

    async def refresh(self) -> None:
        """Ask inference which challenger it holds now; keep the last answer when it cannot
        say (unreachable: the mirrored calls fail fast on their own circuit meanwhile)."""
        try:
            document = await self.client.challenger_manifest()
            challenger = Manifest.model_validate(document) if document is not None else None
        except (GatewayError, ValidationError) as exc:
            _log.debug("challenger not known", **{"error.message": str(exc)})
            return
        previous = self._challenger
        self._challenger = challenger
        if (previous and previous.version) != (challenger and challenger.version):
            _log.info(
                "challenger in shadow" if challenger else "no challenger in shadow",
                **{
                    "event.action": "challenger-changed",
                    "model.name": self.client.model_name,
                    "brainscan.shadow.challenger.version": challenger and challenger.version,
                },
            )

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._compare(job)
            except Exception:  # one bad pair must not end the worker
                _log.exception("shadow comparison failed")
            finally:
                self._queue.task_done()

    async def _compare(self, job: _Job) -> None:
        challenger = self._challenger
        if challenger is None:
            return  # withdrawn while queued
        version = challenger.version
        if self.answers_busy():  # load came while it waited in the queue
            self._drop(version, "answers_busy")
            return
        tensor = job.tensor
        if job.spec != challenger.input:  # the challenger preprocesses differently
            if job.decoded is None:  # a new challenger since the offer: its input differs
                self._drop(version, "challenger_changed")
                return
            prepared = await to_thread.run_sync(
                prepare_for, job.decoded, challenger.input, limiter=self._image_work
            )
            tensor = prepared.tensor
        started = time.perf_counter()
        try:
            result = await self.client.infer(
                tensor,
                challenger.input.name,
                outputs.requested(challenger),
                request_id=job.request_id,
                version=version,
                timeout=self.timeout,
            )
            latency = time.perf_counter() - started
            probabilities = outputs.probabilities(result, challenger)
            check = check_distribution(result, challenger, job.size)
        except ModelNotServed:
            # The replica asked does not hold it (yet, or any more): not the challenger's fault.
            self._drop(version, "not_held")
            self._refreshed.set()
            return
        except InferenceUnavailable as exc:
            # Inference is saturated (503), or the challenger's own circuit is open after
            # failures: either way mirrored work gives way.
            opened = isinstance(exc.__cause__, CircuitOpen)
            self._drop(version, "circuit_open" if opened else "inference_busy")
            return
        except GatewayError as exc:  # an error, a timeout, or an answer we cannot read
            self._fail(version, str(exc.code))
            return
        index = int(np.argmax(probabilities))
        self._record(job, challenger, challenger.classes[index], float(probabilities[index]),
                     check, latency)  # fmt: skip

    def _record(
        self,
        job: _Job,
        challenger: Manifest,
        label: str,
        confidence: float,
        check: DistributionCheck,
        latency: float,
    ) -> None:
        champion = job.champion
        agreed = label == champion.label
        stats = self.stats(challenger.version)
        stats.mirrored += 1
        stats.agreed += agreed
        stats.confusion[champion.label, label] += 1
        stats.distribution[champion.check.result, check.result] += 1
        m = self.metrics
        m.shadow_pairs.labels(champion.version, challenger.version, champion.label, label).inc()
        if agreed:
            m.shadow_agreed.labels(challenger.version).inc()
        m.shadow_distribution_pairs.labels(
            challenger.version, champion.check.result, check.result
        ).inc()
        m.shadow_inference_duration.labels("champion").observe(champion.latency)
        m.shadow_inference_duration.labels("challenger").observe(latency)
        _log.info(
            "shadow comparison",
            **{
                "event.action": "shadow-compare",
                "event.outcome": "success",
                "model.name": challenger.name,
                "model.version": champion.version,
                "brainscan.shadow.agreed": agreed,
                "brainscan.shadow.champion.label": champion.label,
                "brainscan.shadow.champion.confidence": round(champion.confidence, 4),
                "brainscan.shadow.champion.in_distribution": champion.check.in_distribution,
                "brainscan.shadow.champion.latency_ms": round(champion.latency * 1000, 2),
                "brainscan.shadow.challenger.version": challenger.version,
                "brainscan.shadow.challenger.label": label,
                "brainscan.shadow.challenger.confidence": round(confidence, 4),
                "brainscan.shadow.challenger.in_distribution": check.in_distribution,
                "brainscan.shadow.challenger.latency_ms": round(latency * 1000, 2),
            },
        )

    def _drop(self, version: str, reason: str) -> None:
        self.stats(version).dropped += 1
        self.metrics.shadow_dropped.labels(reason).inc()

    def _fail(self, version: str, reason: str) -> None:
        self.stats(version).failed += 1
        self.metrics.shadow_failed.labels(reason).inc()
        _log.warning(
            "challenger failed a mirrored prediction",
            **{
                "event.action": "shadow-compare",
                "event.outcome": "failure",
                "brainscan.shadow.challenger.version": version,
                "error.code": reason,
            },
        )
