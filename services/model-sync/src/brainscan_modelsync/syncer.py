"""Follows the registry for every configured model and publishes what it names, once verified.

One task per model checks the registry on start, every poll interval, and at once when a webhook
or an operator asks (the trigger goes into the history). A version is downloaded into the cache,
verified, and only then published; a refused one leaves the served version in place. While
MLflow is down the task retries with backoff and the cached version keeps being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass

from brainscan_manifest import MANIFEST_FILE
from brainscan_servicekit import get_logger

from .cache import PackageCache
from .history import HistoryEntry, Outcome, Trigger, utc_now
from .metrics import ModelSyncMetrics
from .mlflow_registry import (
    MlflowRegistry,
    RegistryUnavailable,
    RegistryVersion,
    WebhookUnsupported,
)
from .publication import Publication, PublishedVersion
from .settings import ModelSyncSettings
from .verifier import PackageRefused, VerifiedPackage, verify_version

_log = get_logger(__name__)

UNCHANGED = "unchanged"
ALREADY_REFUSED = "already_refused"
REGISTRY_UNAVAILABLE = "registry_unavailable"
ERROR = "error"


@dataclass(frozen=True)
class SyncResult:
    """What one registry check did."""

    model: str
    trigger: str
    outcome: str
    version: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class RegistryStatus:
    reachable: bool | None = None
    """None until the first request to MLflow has been answered or failed."""
    last_error: str | None = None
    last_error_at: str | None = None


@dataclass
class WebhookStatus:
    state: str
    """disabled | manual (accepted, registered by someone else) | pending | registered |
    unsupported (the server has no webhooks or refused ours: polling only)."""
    detail: str = ""
    webhook_id: str | None = None


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
            name: Publication(name, cache, settings.history_max_entries) for name in settings.models
        }
        self.registry_status = RegistryStatus()
        if settings.webhook_url:
            self.webhook = WebhookStatus("pending", "not registered yet")
        elif settings.webhooks_enabled:
            self.webhook = WebhookStatus("manual", "accepted; MODELSYNC_WEBHOOK_URL unset")
        else:
            self.webhook = WebhookStatus("disabled", "MODELSYNC_WEBHOOK_SECRET unset")
        self.started_at = time.time()
        self.last_success: dict[str, float | None] = dict.fromkeys(settings.models)
        self._wake = {name: asyncio.Event() for name in settings.models}
        self._pending: dict[str, list[tuple[Trigger, asyncio.Future[SyncResult]]]] = {
            name: [] for name in settings.models
        }
        # (version, sha256 tag) -> reason: a refused version is not downloaded again each poll.
        self._refused: dict[str, dict[tuple[str, str | None], str]] = {
            name: {} for name in settings.models
        }
        self._tasks: list[asyncio.Task[None]] = []
        metrics.watch_sync_lag(
            lambda: {m: t or self.started_at for m, t in self.last_success.items()}
        )
        metrics.long_polls_waiting.set_function(
            lambda: sum(p.waiting for p in self.publications.values())
        )

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for name in self.publications:
            self.cache.prepare(name)
            self._tasks.append(loop.create_task(self._follow(name), name=f"sync-{name}"))
        if self.settings.webhook_url:
            self._tasks.append(loop.create_task(self._register_webhook(), name="webhook"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    @property
    def ready(self) -> bool:
        """Every model has a version to serve (from the registry or the cache)."""
        return all(p.current is not None for p in self.publications.values())

    # --- triggers ---------------------------------------------------------------------------------
    def request_sync(self, name: str, trigger: Trigger) -> asyncio.Future[SyncResult]:
        """Check ``name`` in the registry now; the future resolves with what that check did."""
        future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        self._pending[name].append((trigger, future))
        self._wake[name].set()
        return future

    async def _next_trigger(
        self, name: str, delay: float
    ) -> tuple[Trigger, list[asyncio.Future[SyncResult]]]:
        wake = self._wake[name]
        try:
            await asyncio.wait_for(wake.wait(), delay)
        except TimeoutError:
            return Trigger.POLL, []
        wake.clear()
        pending, self._pending[name] = self._pending[name], []
        if not pending:
            return Trigger.POLL, []
        return pending[0][0], [future for _, future in pending]

    async def _follow(self, name: str) -> None:
        try:
            await self._restore(name)
        except Exception:  # a damaged cache must not stop following the registry
            _log.exception("restoring from the cache failed", **{"model.name": name})
        trigger, waiters = Trigger.STARTUP, []
        failures = 0
        while True:
            result = await self._sync_guarded(name, trigger)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(result)
            if result.outcome in (REGISTRY_UNAVAILABLE, ERROR):
                failures += 1
                delay = min(
                    self.settings.poll_interval,
                    self.settings.retry_initial_delay * 2 ** (failures - 1),
                )
            else:
                failures = 0
                delay = self.settings.poll_interval
            trigger, waiters = await self._next_trigger(name, delay)

    async def _sync_guarded(self, name: str, trigger: Trigger) -> SyncResult:
        try:
            result = await self.sync(name, trigger)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not stop following the registry
            _log.exception("sync failed", **{"model.name": name})
            result = SyncResult(name, str(trigger), ERROR, reason=f"{type(exc).__name__}: {exc}")
        self.metrics.sync_runs.labels(name, str(trigger), result.outcome).inc()
        return result

    # --- one check ----------------------------------------------------------------------------
    async def sync(self, name: str, trigger: Trigger) -> SyncResult:
        """Read what the registry names for ``name`` and publish it if it passes every check."""
        publication = self.publications[name]
        try:
            target = await asyncio.to_thread(self.registry.serving_version, name)
        except RegistryUnavailable as exc:
            return self._registry_failed(name, trigger, str(exc))
        self._registry_succeeded(name)
        if target is None:
            return self._alias_missing(name, trigger)
        current = publication.current
        if current is not None and current.version == target.version:
            if target.sha256_tag == current.sha256:
                return self._unchanged(name, trigger, target)
            if (target.version, target.sha256_tag) not in self._refused[name]:
                changed_to = target.sha256_tag[:12] + "…" if target.sha256_tag else "nothing"
                reason = (
                    f"the manifest.onnx_sha256 tag of served version {target.version} changed from"
                    f" {current.sha256[:12]}… to {changed_to}; registry versions are immutable:"
                    " register a new version instead"
                )
                return self._refuse(name, trigger, target, reason)
        key = (target.version, target.sha256_tag)
        if key in self._refused[name]:
            return SyncResult(
                name, str(trigger), ALREADY_REFUSED, target.version, self._refused[name][key]
            )
        return await self._fetch_and_publish(name, trigger, target)

    async def _fetch_and_publish(
        self, name: str, trigger: Trigger, target: RegistryVersion
    ) -> SyncResult:
        cached = self.cache.find(name, target.version)
        if cached is not None:
            try:
                package = await asyncio.to_thread(
                    verify_version,
                    cached,
                    model_name=name,
                    version=target.version,
                    sha256_tag=target.sha256_tag,
                )
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
                return self._publish(name, package, cached, trigger, target.selected_by)

        incoming = self.cache.new_incoming(name)
        try:
            await asyncio.to_thread(self.registry.download, target, incoming)
        except RegistryUnavailable as exc:
            self.cache.discard(incoming)
            return self._registry_failed(name, trigger, str(exc))
        try:
            package = await asyncio.to_thread(
                verify_version,
                incoming,
                model_name=name,
                version=target.version,
                sha256_tag=target.sha256_tag,
            )
        except PackageRefused as exc:
            self.cache.discard(incoming)
            return self._refuse(name, trigger, target, str(exc))
        package.manifest.save(incoming / MANIFEST_FILE)  # now carrying its registry version
        directory = self.cache.commit(name, target.version, incoming)
        return self._publish(name, package, directory, trigger, target.selected_by)

    async def _restore(self, name: str) -> None:
        """Serve the version saved by the last run, from the cache, after verifying it again."""
        publication = self.publications[name]
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
            package = await asyncio.to_thread(
                verify_version,
                directory,
                model_name=name,
                version=version,
                sha256_tag=publication.saved_sha256,
            )
        except PackageRefused as exc:
            self.cache.discard(directory)
            reason = f"the cached copy failed verification: {exc}"
            publication.record(HistoryEntry(version, Trigger.STARTUP, Outcome.REFUSED, reason))
            self.metrics.refused.labels(name).inc()
            _log.error(
                "cached version refused",
                **{
                    "event.action": str(Outcome.REFUSED),
                    "event.outcome": "failure",
                    "event.reason": reason,
                    "brainscan.sync.trigger": str(Trigger.STARTUP),
                    "model.name": name,
                    "model.version": version,
                },
            )
            return
        self._publish(name, package, directory, Trigger.STARTUP, "cache", restored=True)

    # --- outcomes -----------------------------------------------------------------------------
    def _publish(
        self,
        name: str,
        package: VerifiedPackage,
        directory,
        trigger: Trigger,
        selected_by: str,
        *,
        restored: bool = False,
    ) -> SyncResult:
        publication = self.publications[name]
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
            name=name,
            version=package.version,
            manifest=package.manifest,
            directory=directory,
            published_at=utc_now(),
            selected_by=selected_by,
        )
        publication.publish(
            published,
            HistoryEntry(
                package.version,
                trigger,
                outcome,
                reason,
                previous.version if previous else None,
                package.sha256,
            ),
        )
        self._refused[name].clear()
        self.cache.touch(name, package.version)
        evicted = self.cache.evict(name, keep=package.version)
        self.metrics.published.labels(name, str(outcome)).inc()
        self.metrics.published_info.labels(name).info(
            {"version": package.version, "sha256": package.sha256}
        )
        self.metrics.degraded.labels(name).set(0)
        self.metrics.cache_versions.labels(name).set(len(self.cache.versions(name)))
        _log.info(
            "model published",
            **{
                "event.action": str(outcome),
                "event.outcome": "success",
                "event.reason": reason,
                "brainscan.sync.trigger": str(trigger),
                "model.name": name,
                "model.version": package.version,
                "model.sha256": package.sha256,
                "model.previous_version": previous.version if previous else None,
                "brainscan.cache.evicted": evicted,
            },
        )
        return SyncResult(name, str(trigger), str(outcome), package.version, reason)

    def _refuse(
        self, name: str, trigger: Trigger, target: RegistryVersion, reason: str
    ) -> SyncResult:
        publication = self.publications[name]
        current = publication.current
        self._refused[name][(target.version, target.sha256_tag)] = reason
        serving = f"; still serving version {current.version}" if current else ""
        publication.degraded_reason = (
            f"{target.selected_by} names version {target.version}, which was refused{serving}"
        )
        publication.record(
            HistoryEntry(
                target.version,
                trigger,
                Outcome.REFUSED,
                reason,
                current.version if current else None,
                target.sha256_tag,
            )
        )
        self.metrics.refused.labels(name).inc()
        self.metrics.degraded.labels(name).set(1)
        _log.error(
            "version refused",
            **{
                "event.action": str(Outcome.REFUSED),
                "event.outcome": "failure",
                "event.reason": reason,
                "brainscan.sync.trigger": str(trigger),
                "model.name": name,
                "model.version": target.version,
                "model.serving_version": current.version if current else None,
            },
        )
        return SyncResult(name, str(trigger), str(Outcome.REFUSED), target.version, reason)

    def _alias_missing(self, name: str, trigger: Trigger) -> SyncResult:
        publication = self.publications[name]
        current = publication.current
        stage = " nor a version in stage Production" if self.settings.follow_legacy_stage else ""
        reason = f"the registry has no alias {self.settings.alias!r}{stage} for {name}"
        if current is not None:
            reason += f"; still serving version {current.version}"
        if publication.degraded_reason != reason:
            publication.degraded_reason = reason
            publication.record(
                HistoryEntry(
                    None,
                    trigger,
                    Outcome.ALIAS_MISSING,
                    reason,
                    current.version if current else None,
                )
            )
            _log.warning("no version to follow", **{"event.reason": reason, "model.name": name})
        self.metrics.degraded.labels(name).set(1)
        return SyncResult(name, str(trigger), str(Outcome.ALIAS_MISSING), None, reason)

    def _unchanged(self, name: str, trigger: Trigger, target: RegistryVersion) -> SyncResult:
        publication = self.publications[name]
        if publication.degraded_reason is not None:
            publication.degraded_reason = None
            reason = f"{target.selected_by} names the served version {target.version} again"
            publication.record(
                HistoryEntry(
                    target.version, trigger, Outcome.RESUMED, reason, sha256=target.sha256_tag
                )
            )
            _log.info("registry names the served version again", **{"model.name": name})
        self.metrics.degraded.labels(name).set(0)
        return SyncResult(name, str(trigger), UNCHANGED, target.version)

    def _registry_failed(self, name: str, trigger: Trigger, reason: str) -> SyncResult:
        status = self.registry_status
        if status.reachable is not False or status.last_error != reason:
            current = self.publications[name].current
            _log.warning(
                "registry unavailable; retrying with backoff",
                **{
                    "error.message": reason,
                    "model.name": name,
                    "model.serving_version": current.version if current else None,
                },
            )
        status.reachable = False
        status.last_error = reason
        status.last_error_at = utc_now()
        self.metrics.registry_up.set(0)
        return SyncResult(name, str(trigger), REGISTRY_UNAVAILABLE, reason=reason)

    def _registry_succeeded(self, name: str) -> None:
        if self.registry_status.reachable is False:
            _log.info("registry reachable again", **{"model.name": name})
        self.registry_status.reachable = True
        now = time.time()
        self.last_success[name] = now
        self.metrics.registry_up.set(1)
        self.metrics.last_success.labels(name).set(now)

    # --- webhook registration -----------------------------------------------------------------
    async def _register_webhook(self) -> None:
        """Register (or update) the webhook in MLflow, retrying while MLflow is unreachable."""
        settings = self.settings
        assert settings.webhook_url is not None and settings.webhook_secret is not None
        failures = 0
        while True:
            try:
                webhook_id = await asyncio.to_thread(
                    self.registry.ensure_webhook,
                    settings.webhook_name,
                    settings.webhook_url,
                    settings.webhook_secret.get_secret_value(),
                )
            except WebhookUnsupported as exc:
                self.webhook = WebhookStatus("unsupported", f"{exc}; following by polling only")
                _log.warning("webhook not registered; polling only", **{"error.message": str(exc)})
                return
            except RegistryUnavailable as exc:
                failures += 1
                self.webhook = WebhookStatus("pending", str(exc))
                await asyncio.sleep(
                    min(settings.poll_interval, settings.retry_initial_delay * 2 ** (failures - 1))
                )
                continue
            self.webhook = WebhookStatus(
                "registered", f"{settings.webhook_name} -> {settings.webhook_url}", webhook_id
            )
            self.metrics.webhook_registered.set(1)
            _log.info(
                "webhook registered",
                **{"brainscan.webhook.id": webhook_id, "url.full": settings.webhook_url},
            )
            return
