"""The model slot: the one model version being served, and hot swaps to a new one.

(A slot, not a registry: the model registry is MLflow's; this holds what one replica serves.)

A new package is verified (sha256, ONNX checker, signature, smoke inference), loaded into a
new session and warmed up beside the one serving; only then does one assignment make it
current. Requests already queued on the old model finish there, then its batcher stops. A
package that fails any step is refused and the old model keeps serving, unless the source
named fallbacks: then the first of them that loads (or is the one serving) is served.

A replica may hold a second slot for the challenger in shadow (``shadow=True``): loaded and
checked the same way, answered only to a request that names its version (``resolve``), and
emptied when model-sync withdraws it (``unload``). It never makes the replica ready or unready.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE
from brainscan_manifest.verify import PackageError, load_package, verify_package
from brainscan_servicekit import get_logger

from .batching import DynamicBatcher
from .errors import ModelNotFound, Unavailable
from .metrics import InferenceMetrics
from .model import LoadedModel
from .session import ModelRunner, WarmUpError, create_session
from .settings import InferenceSettings
from .sources import ModelCandidate

_log = get_logger(__name__)


@dataclass(frozen=True)
class LoadOutcome:
    """What became of one candidate."""

    state: Literal["loaded", "unchanged", "refused"]
    version: str
    reason: str = ""
    origin: str = ""
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    fallback: LoadOutcome | None = None
    """For a refused candidate: what became of the fallback that is serving in its place."""


class ModelSlot:
    """Holds the current ``LoadedModel`` and swaps it atomically for a verified, warmed one."""

    def __init__(
        self, settings: InferenceSettings, metrics: InferenceMetrics, *, shadow: bool = False
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self.is_shadow = shadow
        self.shadow: ModelSlot | None = None
        """The challenger's slot beside this one (set by the app when it follows one)."""
        self._current: LoadedModel | None = None
        self._load_lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self.last_outcome: LoadOutcome | None = None
        # (directory, version) -> file sizes and times when it was refused: a fallback that has
        # not changed since is skipped rather than verified, logged and counted again.
        self._refused_files: dict[tuple[Path, str], tuple] = {}
        if not shadow:
            metrics.watch_queue(lambda: self._current.batcher.queue_depth if self._current else 0)

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    @property
    def ready(self) -> bool:
        return self._current is not None

    def resolve(self, name: str, version: str | None = None) -> LoadedModel:
        """The model serving ``name`` (and ``version`` if given); 404 or 503 otherwise."""
        model = self._current
        if model is None:
            expected = self._settings.model_name
            if expected is not None and name != expected:
                raise ModelNotFound(f"unknown model {name!r}; this service serves {expected!r}")
            raise Unavailable("no model is loaded yet", code="not_ready")
        if name != model.name:
            raise ModelNotFound(f"unknown model {name!r}; this service serves {model.name!r}")
        if version is not None and version != model.version:
            challenger = self.shadow.current if self.shadow is not None else None
            if challenger is not None and version == challenger.version:
                return challenger  # asked for by version: the only way it answers
            raise ModelNotFound(
                f"model {name!r} has no version {version!r} here; "
                f"serving version {model.version!r}",
                code="version_not_found",
            )
        return model

    def challenger(self, name: str) -> LoadedModel:
        """The challenger held in shadow beside ``name``; 404 ``no_challenger`` while there is
        none (a caller mirrors traffic to it only while this answers)."""
        served = self.resolve(name)
        challenger = self.shadow.current if self.shadow is not None else None
        if challenger is None:
            raise ModelNotFound(
                f"model {name!r} has no challenger in shadow here (serving version "
                f"{served.version!r})",
                code="no_challenger",
            )
        return challenger

    async def load(self, candidate: ModelCandidate) -> LoadOutcome:
        """Verify, load and warm ``candidate``, then swap it in; if it is refused, its fallbacks
        in order until one loads or is already serving. Never raises for a bad package."""
        async with self._load_lock:
            outcome = await self._load(candidate)
            if outcome.state == "refused":
                outcome = await self._fall_back(candidate, outcome)
        self.last_outcome = outcome
        return outcome

    async def _fall_back(self, refused: ModelCandidate, outcome: LoadOutcome) -> LoadOutcome:
        for fallback in refused.fallbacks:
            files = _file_stats(fallback)
            if self._refused_files.get((fallback.directory, fallback.version)) == files:
                continue  # refused before with these very files: it would be refused again
            result = await self._load(fallback)
            if result.state != "refused":
                _log.warning(
                    "serving an older version in place of a refused one",
                    **{
                        "event.action": "model-fallback",
                        "model.version": fallback.version,
                        "model.refused_version": refused.version,
                    },
                )
                return replace(outcome, fallback=result)
        return outcome

    async def _load(self, candidate: ModelCandidate) -> LoadOutcome:
        log = _log.bind(**{"model.version": candidate.version, "model.origin": candidate.origin})
        try:
            prepared = await asyncio.to_thread(self._prepare, candidate)
        except (PackageError, WarmUpError) as exc:
            return self._refuse(candidate, str(exc), log)
        except Exception as exc:  # onnxruntime and the OS raise many types; all mean "refuse"
            return self._refuse(candidate, f"{type(exc).__name__}: {exc}", log)
        if prepared is None:
            return LoadOutcome("unchanged", candidate.version, "already serving", candidate.origin)

        runner, onnx_path = prepared
        manifest = runner.manifest
        batcher: DynamicBatcher[np.ndarray, dict[str, np.ndarray]] = DynamicBatcher(
            runner.run_batch,
            max_batch_size=self._settings.max_batch_size,
            queue_capacity=self._settings.queue_capacity,
            max_queue_delay=self._settings.max_queue_delay,
            workers=self._settings.batch_workers,
            observer=self._metrics.batch_observer(manifest.name, candidate.version),
            name=f"onnxruntime-{manifest.name}-{candidate.version}",
        )
        batcher.start()
        model = LoadedModel(
            version=candidate.version,
            manifest=manifest,
            onnx_path=onnx_path,
            runner=runner,
            batcher=batcher,
        )
        previous, self._current = self._current, model  # the swap: one assignment
        self._metrics.model_loads.labels(model.name, "loaded").inc()
        self._metrics.model_bytes.labels(self._role).set(onnx_path.stat().st_size)
        if self.is_shadow:
            if previous is not None:
                self._metrics.challenger.remove(previous.name, previous.version)
            self._metrics.challenger.labels(model.name, model.version).set(1)
        else:
            self._metrics.model.info(
                {"name": model.name, "version": model.version, "sha256": model.sha256}
            )
            self._metrics.ready.set(1)
        log.info(
            "model loaded",
            **{
                "event.action": "model-loaded",
                "event.outcome": "success",
                "model.name": model.name,
                "model.sha256": model.sha256,
                "model.previous_version": previous.version if previous else None,
                "brainscan.model_role": self._role,
            },
        )
        self._retire(previous)
        return LoadOutcome("loaded", candidate.version, origin=candidate.origin)

    @property
    def _role(self) -> str:
        return "challenger" if self.is_shadow else "served"

    def _retire(self, previous: LoadedModel | None) -> None:
        if previous is not None:
            # Requests queued on the old model finish there; nobody waits for that here.
            task = asyncio.get_running_loop().create_task(previous.close())
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def unload(self) -> None:
        """Hold nothing any more (a challenger withdrawn); queued requests still finish."""
        async with self._load_lock:
            previous, self._current = self._current, None
            if previous is None:
                return
            self._metrics.model_bytes.remove(self._role)
            if self.is_shadow:
                self._metrics.challenger.remove(previous.name, previous.version)
            else:
                self._metrics.ready.set(0)
            _log.info(
                "model unloaded",
                **{
                    "event.action": "model-unloaded",
                    "model.name": previous.name,
                    "model.version": previous.version,
                    "brainscan.model_role": self._role,
                },
            )
            self._retire(previous)

    def _prepare(self, candidate: ModelCandidate):
        """Blocking part of a load: checks, session, warm-up. None if already serving it."""
        onnx_path, manifest = load_package(candidate.directory)
        current = self._current
        if (
            current is not None
            and current.version == candidate.version
            and current.sha256 == manifest.onnx_sha256
            and (candidate.expected_sha256 in (None, current.sha256))
        ):
            return None
        package = verify_package(
            onnx_path,
            manifest,
            expected_sha256=candidate.expected_sha256,
            expected_name=self._settings.model_name,
            expected_version=candidate.version,
            session_factory=lambda path: create_session(path, self._settings),
        )
        assert package.session is not None  # the smoke inference ran on it
        runner = ModelRunner(package.session, manifest)
        runner.warm_up(sorted({1, self._settings.max_batch_size}))
        return runner, onnx_path

    def _refuse(self, candidate: ModelCandidate, reason: str, log) -> LoadOutcome:
        self._refused_files[(candidate.directory, candidate.version)] = _file_stats(candidate)
        self._metrics.model_loads.labels(
            self._current.name if self._current else (self._settings.model_name or ""), "refused"
        ).inc()
        log.error(
            "model refused",
            **{
                "event.action": "model-refused",
                "event.outcome": "failure",
                "error.message": reason,
                "model.serving_version": self._current.version if self._current else None,
            },
        )
        return LoadOutcome("refused", candidate.version, reason, candidate.origin)

    async def close(self) -> None:
        """Finish queued requests on every model and stop their threads."""
        model, self._current = self._current, None
        if not self.is_shadow:
            self._metrics.ready.set(0)
        if model is not None:
            await model.close()
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)


def _file_stats(candidate: ModelCandidate) -> tuple:
    """Sizes and modification times of a package's files (None for a missing one)."""
    stats = []
    for name in (MANIFEST_FILE, MODEL_FILE):
        try:
            stat = (candidate.directory / name).stat()
        except OSError:
            stats.append(None)
        else:
            stats.append((stat.st_size, stat.st_mtime_ns))
    return tuple(stats)
