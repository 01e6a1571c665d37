"""What model-sync serves for one model, why, its history, and waiting for it to change.

A publication owns everything about one model that outlives a single registry check: the served
version, the versions refused (so they are not downloaded again on every poll), why the
registry's choice is not what is served (the degraded reason), and the history. Each change is
recorded in the history, the metrics and the log here, and saved to the cache folder so a
restarted model-sync knows what it served and why. Long polls wait here for the served version
to change. Everything runs on the event loop.

A shadow publication follows a second alias (the challenger) the same way, with two differences:
its version is never what replicas answer with, and it holds no version when its alias is
removed, is refused, or names the served version (``withdraw``), rather than keeping the last
one, since evidence gathered on a version nobody proposes any more misleads. Its problems do not
make model-sync degraded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from brainscan_manifest import MODEL_FILE, Manifest
from brainscan_manifest.registry_contract import PRODUCTION
from brainscan_servicekit import get_logger

from .cache import PackageCache
from .history import History, HistoryEntry, Outcome, Trigger, utc_now
from .metrics import ModelSyncMetrics
from .mlflow_registry import RegistryVersion

_log = get_logger(__name__)


@dataclass(frozen=True)
class PublishedVersion:
    """A verified version, served to the inference replicas."""

    name: str
    version: str
    manifest: Manifest
    directory: Path
    published_at: str
    selected_by: str

    @property
    def sha256(self) -> str:
        return self.manifest.onnx_sha256

    @property
    def onnx_path(self) -> Path:
        return self.directory / MODEL_FILE


class Publication:
    """The served version of one model and what became of the registry's choices for it."""

    def __init__(
        self,
        name: str,
        cache: PackageCache,
        metrics: ModelSyncMetrics,
        history_max_entries: int,
        *,
        alias: str = PRODUCTION,
        shadow: bool = False,
    ) -> None:
        self.name = name
        self.alias = alias
        self.shadow = shadow
        self.cache = cache
        self.metrics = metrics
        self.current: PublishedVersion | None = None
        self.history = History(history_max_entries)
        self.waiting = 0
        """Long polls waiting for a change now."""
        self._degraded_reason: str | None = None
        # (version, sha256 tag) -> reason: a refused version is not downloaded again each poll.
        self._refused: dict[tuple[str, str | None], str] = {}
        self._changed = asyncio.Event()
        self._long_polls_ended = False
        saved = cache.read_state(name, self._track) or {}
        self.saved_version: str | None = saved.get("current")
        self.saved_sha256: str | None = saved.get("sha256")
        for entry in saved.get("history", []):
            try:
                self.history.append(HistoryEntry.from_dict(entry))
            except (KeyError, ValueError, TypeError):
                continue  # an entry from another format: history is informative only

    @property
    def _track(self) -> str | None:
        """The cache's name for this publication's state: None for the served version."""
        return self.alias if self.shadow else None

    @property
    def degraded_reason(self) -> str | None:
        """Why the registry's choice is not what is served (alias missing, version refused)."""
        return self._degraded_reason

    def refusal(self, version: str, sha256_tag: str | None) -> str | None:
        """Why ``version`` with this hash tag was refused since the last publication, if it was."""
        return self._refused.get((version, sha256_tag))

    # --- what became of the registry's choice ---------------------------------------------------
    def publish(
        self, version: PublishedVersion, outcome: Outcome, reason: str, trigger: Trigger
    ) -> None:
        """Serve ``version`` from now on, record why, trim the cache, and wake every long poll."""
        previous = self.current
        self.current = version
        self._degraded_reason = None
        self._record(
            HistoryEntry(
                version.version,
                trigger,
                outcome,
                reason,
                previous.version if previous else None,
                version.sha256,
            )
        )
        self._wake_long_polls()
        self._refused.clear()
        self.cache.use(self.name, self.alias, version.version)
        evicted = self.cache.evict(self.name)
        self.metrics.published.labels(self.name, self.alias, str(outcome)).inc()
        self.metrics.published_info.labels(self.name, self.alias).info(
            {"version": version.version, "sha256": version.sha256}
        )
        self._set_degraded(False)
        self.metrics.cache_versions.labels(self.name).set(len(self.cache.versions(self.name)))
        _log.info(
            "model published",
            **{
                "event.action": str(outcome),
                "event.outcome": "success",
                "event.reason": reason,
                "brainscan.sync.trigger": str(trigger),
                "model.name": self.name,
                "model.version": version.version,
                "model.sha256": version.sha256,
                "brainscan.alias": self.alias,
                "model.previous_version": previous.version if previous else None,
                "brainscan.cache.evicted": evicted,
            },
        )

    def refuse(self, target: RegistryVersion, trigger: Trigger, reason: str) -> None:
        """The version the registry names failed a check: remember it and say why. The served
        version keeps being served; a shadow publication withdraws its version instead."""
        current = self.current
        self._refused[(target.version, target.sha256_tag)] = reason
        self._record(
            HistoryEntry(
                target.version,
                trigger,
                Outcome.REFUSED,
                reason,
                current.version if current else None,
                target.sha256_tag,
            )
        )
        self.metrics.refused.labels(self.name, self.alias).inc()
        _log.error(
            "version refused",
            **{
                "event.action": str(Outcome.REFUSED),
                "event.outcome": "failure",
                "event.reason": reason,
                "brainscan.sync.trigger": str(trigger),
                "brainscan.alias": self.alias,
                "model.name": self.name,
                "model.version": target.version,
                "model.serving_version": current.version if current else None,
            },
        )
        why = f"{target.selected_by} names version {target.version}, which was refused"
        if self.shadow:
            self.withdraw(trigger, why)
            return
        serving = f"; still serving version {current.version}" if current else ""
        self._degraded_reason = why + serving
        self._set_degraded(True)

    def refuse_cached(self, version: str, reason: str) -> None:
        """On start, the cached copy of the version served before failed verification."""
        self._record(HistoryEntry(version, Trigger.STARTUP, Outcome.REFUSED, reason))
        self.metrics.refused.labels(self.name, self.alias).inc()
        _log.error(
            "cached version refused",
            **{
                "event.action": str(Outcome.REFUSED),
                "event.outcome": "failure",
                "event.reason": reason,
                "brainscan.sync.trigger": str(Trigger.STARTUP),
                "model.name": self.name,
                "model.version": version,
            },
        )

    def alias_missing(self, trigger: Trigger, why: str) -> str:
        """The registry names no version (``why``); recorded once until that changes. Returns
        the reason, with the version still served (a shadow publication withdraws its own)."""
        if self.shadow:
            self.withdraw(trigger, why)
            return why
        current = self.current
        reason = why if current is None else f"{why}; still serving version {current.version}"
        if self._degraded_reason != reason:
            self._degraded_reason = reason
            self._record(
                HistoryEntry(
                    None,
                    trigger,
                    Outcome.ALIAS_MISSING,
                    reason,
                    current.version if current else None,
                )
            )
            _log.warning(
                "no version to follow", **{"event.reason": reason, "model.name": self.name}
            )
        self._set_degraded(True)
        return reason

    def withdraw(self, trigger: Trigger, reason: str) -> None:
        """A shadow publication stops offering a version (recorded when it had one)."""
        previous = self.current
        if previous is None:
            return
        self.current = None
        self.saved_version = self.saved_sha256 = None  # a restart must not bring it back
        self.cache.use(self.name, self.alias, None)
        self._record(HistoryEntry(None, trigger, Outcome.WITHDRAWN, reason, previous.version, None))
        self._wake_long_polls()
        self.metrics.published_info.remove(self.name, self.alias)
        _log.info(
            "version withdrawn",
            **{
                "event.action": str(Outcome.WITHDRAWN),
                "event.outcome": "success",
                "event.reason": reason,
                "brainscan.sync.trigger": str(trigger),
                "brainscan.alias": self.alias,
                "model.name": self.name,
                "model.previous_version": previous.version,
            },
        )

    def named_again(self, target: RegistryVersion, trigger: Trigger) -> None:
        """The registry names the served version: no longer degraded (recorded if it was)."""
        if self._degraded_reason is not None:
            self._degraded_reason = None
            reason = f"{target.selected_by} names the served version {target.version} again"
            self._record(
                HistoryEntry(
                    target.version, trigger, Outcome.RESUMED, reason, sha256=target.sha256_tag
                )
            )
            _log.info("registry names the served version again", **{"model.name": self.name})
        self._set_degraded(False)

    def _set_degraded(self, degraded: bool) -> None:
        # Degraded means the replicas' answers do not come from the registry's choice; what
        # runs in shadow never answers, so a shadow publication leaves the gauge alone.
        if not self.shadow:
            self.metrics.degraded.labels(self.name).set(1 if degraded else 0)

    def _record(self, entry: HistoryEntry) -> None:
        self.history.append(dataclasses.replace(entry, alias=self.alias))
        self.cache.write_state(
            self.name,
            {
                "name": self.name,
                "current": self.current.version if self.current else self.saved_version,
                "sha256": self.current.sha256 if self.current else self.saved_sha256,
                "saved_at": utc_now(),
                "history": self.history.to_list(),
            },
            self._track,
        )

    # --- long poll ----------------------------------------------------------------------------
    async def wait_for_change(self, known: str | None, timeout: float) -> PublishedVersion | None:
        """The served version once it differs from ``known``, or whatever is served at timeout
        (at once after ``end_long_polls``: the server is stopping). None: nothing to offer."""
        deadline = time.monotonic() + timeout
        self.waiting += 1
        try:
            while not self._long_polls_ended and self._unchanged(known):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                changed = self._changed
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except TimeoutError:
                    break
        finally:
            self.waiting -= 1
        return self.current

    def _wake_long_polls(self) -> None:
        woken, self._changed = self._changed, asyncio.Event()
        woken.set()

    def end_long_polls(self) -> None:
        """Answer every waiting long poll now with what is served, and any later one at once."""
        self._long_polls_ended = True
        self._changed.set()

    def _unchanged(self, known: str | None) -> bool:
        if self.current is None:
            # Nothing to offer yet: wait for a first version. A shadow version the caller knows
            # being withdrawn is a change, though: answered at once.
            return known is None or not self.shadow
        return known is not None and self.current.version == known
