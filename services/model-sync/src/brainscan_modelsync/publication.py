"""What model-sync serves for one model, its history, and waiting for it to change (long poll).

Everything here runs on the event loop; the state is saved to the cache folder on each change so
a restarted model-sync knows what it served and why.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from brainscan_manifest import MODEL_FILE, Manifest

from .cache import PackageCache
from .history import History, HistoryEntry, utc_now


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
    """The served version of one model; waiters are woken when it changes."""

    def __init__(self, name: str, cache: PackageCache, history_max_entries: int) -> None:
        self.name = name
        self.cache = cache
        self.current: PublishedVersion | None = None
        self.degraded_reason: str | None = None
        """Why the registry's choice is not what is served (alias missing, version refused)."""
        self.history = History(history_max_entries)
        self._changed = asyncio.Event()
        self.waiting = 0
        saved = cache.read_state(name) or {}
        self.saved_version: str | None = saved.get("current")
        self.saved_sha256: str | None = saved.get("sha256")
        for entry in saved.get("history", []):
            try:
                self.history.append(HistoryEntry.from_dict(entry))
            except (KeyError, ValueError, TypeError):
                continue  # an entry from another format: history is informative only

    def publish(self, version: PublishedVersion, entry: HistoryEntry) -> None:
        """Serve ``version`` from now on, record why, save, and wake every long poll."""
        self.current = version
        self.degraded_reason = None
        self.history.append(entry)
        self._save()
        previous, self._changed = self._changed, asyncio.Event()
        previous.set()

    def record(self, entry: HistoryEntry) -> None:
        """Add a history entry that does not change the served version."""
        self.history.append(entry)
        self._save()

    def _save(self) -> None:
        self.cache.write_state(
            self.name,
            {
                "name": self.name,
                "current": self.current.version if self.current else self.saved_version,
                "sha256": self.current.sha256 if self.current else self.saved_sha256,
                "saved_at": utc_now(),
                "history": self.history.to_list(),
            },
        )

    async def wait_for_change(self, known: str | None, timeout: float) -> PublishedVersion | None:
        """The served version once it differs from ``known``, or whatever is served at timeout."""
        deadline = time.monotonic() + timeout
        self.waiting += 1
        try:
            while self._unchanged(known):
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

    def _unchanged(self, known: str | None) -> bool:
        if self.current is None:
            return True  # nothing to offer yet: wait for the first version
        return known is not None and self.current.version == known
