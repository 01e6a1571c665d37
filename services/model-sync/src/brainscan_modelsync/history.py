"""What happened to a model's served version: one entry per change, newest kept, oldest dropped."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from brainscan_manifest.registry_contract import PRODUCTION


class Trigger(StrEnum):
    """What made model-sync look at the registry."""

    STARTUP = "startup"
    POLL = "poll"
    WEBHOOK = "webhook"
    MANUAL = "manual"


class Outcome(StrEnum):
    """What a registry check came to: the history records the first seven, every check counts in
    ``brainscan_modelsync_sync_runs_total`` with its outcome."""

    PUBLISHED = "published"
    """A newer version than the one served (or the first) is now served."""
    ROLLED_BACK = "rolled_back"
    """An older version than the one served is now served (the alias moved back)."""
    RESTORED = "restored"
    """On start, the version served before was verified again from the cache and is served."""
    REFUSED = "refused"
    """The version failed a check; the one served before keeps being served."""
    ALIAS_MISSING = "alias_missing"
    """The registry names no version; the one served before keeps being served."""
    RESUMED = "resumed"
    """The registry names the served version again after a missing alias or a refusal."""
    WITHDRAWN = "withdrawn"
    """A shadow alias (the challenger) was removed, was refused, or names the served version:
    no version runs in shadow until it names another."""
    UNCHANGED = "unchanged"
    """The registry names the served version (not recorded)."""
    ALREADY_REFUSED = "already_refused"
    """The registry names a version refused before, with the same hash tag (not recorded again)."""
    REGISTRY_UNAVAILABLE = "registry_unavailable"
    """MLflow did not answer; retried with backoff (not recorded)."""
    ERROR = "error"
    """The check failed on a bug; logged with its traceback, retried with backoff (not recorded)."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class HistoryEntry:
    version: str | None
    trigger: Trigger
    outcome: Outcome
    reason: str = ""
    previous_version: str | None = None
    sha256: str | None = None
    at: str = field(default_factory=utc_now)
    alias: str = PRODUCTION
    """The alias whose version this entry is about (entries from before shadowing: production)."""

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "trigger": str(self.trigger), "outcome": str(self.outcome)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEntry:
        return cls(
            version=data.get("version"),
            trigger=Trigger(data["trigger"]),
            outcome=Outcome(data["outcome"]),
            reason=data.get("reason", ""),
            previous_version=data.get("previous_version"),
            sha256=data.get("sha256"),
            at=data["at"],
            alias=data.get("alias", PRODUCTION),
        )


class History:
    """A bounded list of entries, oldest first."""

    def __init__(self, max_entries: int, entries: list[HistoryEntry] | None = None) -> None:
        self._entries: deque[HistoryEntry] = deque(entries or [], maxlen=max_entries)

    def append(self, entry: HistoryEntry) -> None:
        self._entries.append(entry)

    def newest_first(self, limit: int | None = None) -> list[HistoryEntry]:
        entries = list(reversed(self._entries))
        return entries if limit is None else entries[:limit]

    def to_list(self) -> list[dict[str, object]]:
        return [entry.to_dict() for entry in self._entries]
