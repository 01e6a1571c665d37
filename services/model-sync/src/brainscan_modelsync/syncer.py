"""Follows the registry for every configured model and publishes what it names, once verified.

Each model has a served track (the `production` alias) and, unless turned off, a shadow track
(the `challenger` alias): the same checks and publication, so a challenger is verified exactly
as a version that serves. One task per track checks the registry on start, every poll interval,
and at once when a webhook or an operator asks (the trigger goes into the history). A version is
downloaded into the cache, verified, and only then published; a refused one leaves the served
version in place. While MLflow is down the task retries with backoff and the cached version
keeps being served.

The syncer decides; what each decision changes is recorded by the model's ``Publication``
(served version, refusals, degraded reason, history) and by ``RegistryHealth`` (reachability).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path

from brainscan_manifest import MANIFEST_FILE
from brainscan_servicekit import get_logger

from .cache import PackageCache
from .history import Outcome, Trigger, utc_now
from .metrics import ModelSyncMetrics
from .mlflow_registry import MlflowRegistry, RegistryUnavailable, RegistryVersion
from .publication import Publication, PublishedVersion
from .registry_health import RegistryHealth
from .settings import ModelSyncSettings
from .verifier import PackageRefused, VerifiedPackage, verify_version

_log = get_logger(__name__)


@dataclass(frozen=True)
class SyncResult:
    """What one registry check did."""

    model: str
    trigger: Trigger
    outcome: Outcome
    version: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "trigger": str(self.trigger), "outcome": str(self.outcome)}


_TrackKey = tuple[str, str]
_MOVED = (Outcome.PUBLISHED, Outcome.ROLLED_BACK, Outcome.RESTORED)


def _key(publication: Publication) -> _TrackKey:
    return (publication.name, publication.alias)


def _version_order(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


class ModelSyncer:
    """Keeps each model's publication on the registry's verified choice."""

    def __init__(
        self,
        settings: ModelSyncSettings,
        registry: MlflowRegistry,
        cache: PackageCache,
        metrics: ModelSyncMetrics,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.cache = cache
        self.metrics = metrics
        self.publications = {
            name: Publication(
                name, cache, metrics, settings.history_max_entries, alias=settings.alias
            )
            for name in settings.models
        }
        """The served track of each model: what replicas answer with."""
        self.challengers = {
            name: Publication(
                name,
                cache,
                metrics,
                settings.history_max_entries,
                alias=settings.challenger_alias,
                shadow=True,
            )
            for name in settings.models
            if settings.challenger_alias
        }
        """The shadow track of each model (empty when ``challenger_alias`` is)."""
        self.registry_health = RegistryHealth(settings.models, metrics)
        tracks = self.tracks
        self._wake = {_key(p): asyncio.Event() for p in tracks}
        self._pending: dict[_TrackKey, list[tuple[Trigger, asyncio.Future[SyncResult]]]] = {
            _key(p): [] for p in tracks
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        metrics.long_polls_waiting.set_function(lambda: sum(p.waiting for p in self.tracks))

    @property
    def tracks(self) -> list[Publication]:
        """Every publication: each model's served track, then its shadow track."""
        return [*self.publications.values(), *self.challengers.values()]

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for name in self.publications:
            self.cache.prepare(name)
        for publication in self.tracks:
            task_name = f"sync-{publication.name}-{publication.alias}"
            self._tasks.append(loop.create_task(self._follow(publication), name=task_name))

    async def stop(self) -> None:
        # The flag as well as the cancel: Python 3.11's wait_for drops a cancellation that
        # arrives as the awaited event fires (a trigger at shutdown), and the loop would go on.
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def end_long_polls(self) -> None:
        """Answer every open long poll with what is served now (the server is stopping)."""
        for publication in self.tracks:
            publication.end_long_polls()

    @property
    def ready(self) -> bool:
        """Every model has a version to serve (from the registry or the cache)."""
        return all(p.current is not None for p in self.publications.values())

    # --- triggers ---------------------------------------------------------------------------------
    def request_sync(self, name: str, trigger: Trigger) -> asyncio.Future[SyncResult]:
        """Check ``name`` in the registry now, both tracks; the future resolves with what the
        served track's check did."""
        futures = []
        for publication in self._tracks_of(name):
            future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
            self._pending[_key(publication)].append((trigger, future))
            self._wake[_key(publication)].set()
            futures.append(future)
        return futures[0]

    def _tracks_of(self, name: str) -> list[Publication]:
        shadow = self.challengers.get(name)
        return [self.publications[name], *([shadow] if shadow is not None else [])]

    async def _next_trigger(
        self, key: _TrackKey, delay: float
    ) -> tuple[Trigger, list[asyncio.Future[SyncResult]]]:
        wake = self._wake[key]
        try:
            await asyncio.wait_for(wake.wait(), delay)
        except TimeoutError:
            return Trigger.POLL, []
        wake.clear()
        pending, self._pending[key] = self._pending[key], []
        if not pending:
            return Trigger.POLL, []
        return pending[0][0], [future for _, future in pending]

    async def _follow(self, publication: Publication) -> None:
        try:
            await self._restore(publication)
        except Exception:  # a damaged cache must not stop following the registry
            _log.exception(
                "restoring from the cache failed",
                **{"model.name": publication.name, "brainscan.alias": publication.alias},
            )
        trigger: Trigger = Trigger.STARTUP
        waiters: list[asyncio.Future[SyncResult]] = []
        failures = 0
        while True:
            result = await self._sync_guarded(publication, trigger)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(result)
            shadow = self.challengers.get(publication.name)
            if not publication.shadow and shadow is not None and result.outcome in _MOVED:
                self._wake[_key(shadow)].set()  # it may name the version that now serves
            if result.outcome in (Outcome.REGISTRY_UNAVAILABLE, Outcome.ERROR):
                failures += 1
                delay = self.settings.retry_delay(failures)
            else:
                failures = 0
                delay = self.settings.poll_interval
            trigger, waiters = await self._next_trigger(_key(publication), delay)
            if self._stopping:
                return

    async def _sync_guarded(self, publication: Publication, trigger: Trigger) -> SyncResult:
        name = publication.name
        try:
            result = await self.sync_track(publication, trigger)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not stop following the registry
            _log.exception("sync failed", **{"model.name": name})
            result = SyncResult(name, trigger, Outcome.ERROR, reason=f"{type(exc).__name__}: {exc}")
        self.metrics.sync_runs.labels(name, str(trigger), str(result.outcome)).inc()
        return result

    # --- one check ----------------------------------------------------------------------------
    async def sync(self, name: str, trigger: Trigger) -> SyncResult:
        """Check the served track of ``name`` (see ``sync_track``)."""
        return await self.sync_track(self.publications[name], trigger)

    async def sync_track(self, publication: Publication, trigger: Trigger) -> SyncResult:
        """Read what the registry names for the track and publish it if it passes every check."""
        name = publication.name
        try:
            target = await asyncio.to_thread(self._registry_choice, publication)
        except RegistryUnavailable as exc:
            return self._registry_failed(name, trigger, str(exc))
        self.registry_health.succeeded(name)
        if target is None:
            legacy = self.settings.follow_legacy_stage and not publication.shadow
            stage = " nor a version in stage Production" if legacy else ""
            why = f"the registry has no alias {publication.alias!r}{stage} for {name}"
            reason = publication.alias_missing(trigger, why)
            return SyncResult(name, trigger, Outcome.ALIAS_MISSING, None, reason)
        served = self.publications[name].current
        if publication.shadow and served is not None and served.version == target.version:
            # Promoted, or never different: nothing to compare with what serves.
            why = f"{target.selected_by} names version {target.version}, the one served"
            publication.withdraw(trigger, why)
            return SyncResult(name, trigger, Outcome.UNCHANGED, target.version, why)
        current = publication.current
        if current is not None and current.version == target.version:
            if target.sha256_tag == current.sha256:
                publication.named_again(target, trigger)
                return SyncResult(name, trigger, Outcome.UNCHANGED, target.version)
            if publication.refusal(target.version, target.sha256_tag) is None:
                changed_to = target.sha256_tag[:12] + "…" if target.sha256_tag else "nothing"
                reason = (
                    f"the manifest.onnx_sha256 tag of served version {target.version} changed from"
                    f" {current.sha256[:12]}… to {changed_to}; registry versions are immutable:"
                    " register a new version instead"
                )
                return self._refuse(publication, trigger, target, reason)
        refused = publication.refusal(target.version, target.sha256_tag)
        if refused is not None:
            return SyncResult(name, trigger, Outcome.ALREADY_REFUSED, target.version, refused)
        return await self._fetch_and_publish(publication, trigger, target)

    async def _fetch_and_publish(
        self, publication: Publication, trigger: Trigger, target: RegistryVersion
    ) -> SyncResult:
        name = publication.name
        cached = self.cache.find(name, target.version)
        if cached is not None:
            try:
                package = await self._verify(cached, name, target.version, target.sha256_tag)
            except PackageRefused as exc:
                _log.warning(
                    "cached copy failed verification; downloading again",
                    **{
                        "error.message": str(exc),
                        "model.name": name,
                        "model.version": target.version,
                    },
                )
                self.cache.discard(cached)
            else:
                return self._publish(publication, package, cached, trigger, target.selected_by)

        incoming = self.cache.new_incoming(name)
        try:
            await asyncio.to_thread(self.registry.download, target, incoming)
        except RegistryUnavailable as exc:
            self.cache.discard(incoming)
            return self._registry_failed(name, trigger, str(exc))
        try:
            package = await self._verify(incoming, name, target.version, target.sha256_tag)
        except PackageRefused as exc:
            self.cache.discard(incoming)
            return self._refuse(publication, trigger, target, str(exc))
        package.manifest.save(incoming / MANIFEST_FILE)  # now carrying its registry version
        directory = self.cache.commit(name, target.version, incoming)
        return self._publish(publication, package, directory, trigger, target.selected_by)

    def _registry_choice(self, publication: Publication) -> RegistryVersion | None:
        if publication.shadow:
            return self.registry.aliased_version(publication.name, publication.alias)
        return self.registry.serving_version(publication.name)

    async def _restore(self, publication: Publication) -> None:
        """Serve the version saved by the last run, from the cache, after verifying it again."""
        name = publication.name
        version = publication.saved_version
        if version is None:
            return
        directory = self.cache.find(name, version)
        if directory is None:
            _log.warning(
                "the version served before is not in the cache",
                **{"model.name": name, "model.version": version},
            )
            return
        try:
            package = await self._verify(directory, name, version, publication.saved_sha256)
        except PackageRefused as exc:
            self.cache.discard(directory)
            publication.refuse_cached(version, f"the cached copy failed verification: {exc}")
            return
        self._publish(publication, package, directory, Trigger.STARTUP, "cache", restored=True)

    @staticmethod
    async def _verify(
        directory: Path, name: str, version: str, sha256_tag: str | None
    ) -> VerifiedPackage:
        return await asyncio.to_thread(
            verify_version, directory, model_name=name, version=version, sha256_tag=sha256_tag
        )

    # --- decisions ------------------------------------------------------------------------------
    def _publish(
        self,
        publication: Publication,
        package: VerifiedPackage,
        directory: Path,
        trigger: Trigger,
        selected_by: str,
        *,
        restored: bool = False,
    ) -> SyncResult:
        """Publish a verified package: a restore, a rollback (an older version) or an update."""
        previous = publication.current
        if restored:
            outcome = Outcome.RESTORED
            reason = "served from the on-disk cache until the registry answers"
        elif previous is not None and _version_order(package.version) < _version_order(
            previous.version
        ):
            outcome = Outcome.ROLLED_BACK
            reason = f"{selected_by} moved back from version {previous.version}"
        else:
            outcome = Outcome.PUBLISHED
            reason = f"{selected_by} names version {package.version}"
        published = PublishedVersion(
            name=publication.name,
            version=package.version,
            manifest=package.manifest,
            directory=directory,
            published_at=utc_now(),
            selected_by=selected_by,
        )
        publication.publish(published, outcome, reason, trigger)
        return SyncResult(publication.name, trigger, outcome, package.version, reason)

    @staticmethod
    def _refuse(
        publication: Publication, trigger: Trigger, target: RegistryVersion, reason: str
    ) -> SyncResult:
        publication.refuse(target, trigger, reason)
        return SyncResult(publication.name, trigger, Outcome.REFUSED, target.version, reason)

    def _registry_failed(self, name: str, trigger: Trigger, reason: str) -> SyncResult:
        current = self.publications[name].current
        self.registry_health.failed(name, reason, current.version if current else None)
        return SyncResult(name, trigger, Outcome.REGISTRY_UNAVAILABLE, reason=reason)
