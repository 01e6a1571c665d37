"""History: bounded, newest first, and stored as plain JSON that reads back the same."""

from __future__ import annotations

from brainscan_modelsync.history import History, HistoryEntry, Outcome, Trigger


def entry(version: str, outcome: Outcome = Outcome.PUBLISHED) -> HistoryEntry:
    return HistoryEntry(version, Trigger.POLL, outcome, f"because {version}")


def test_the_oldest_entries_are_dropped_and_the_newest_come_first() -> None:
    history = History(max_entries=3)
    for version in "12345":
        history.append(entry(version))
    assert [e.version for e in history.newest_first()] == ["5", "4", "3"]
    assert [e.version for e in history.newest_first(limit=2)] == ["5", "4"]


def test_entries_round_trip_through_json_dicts() -> None:
    original = HistoryEntry(
        "3", Trigger.WEBHOOK, Outcome.REFUSED, "sha256 mismatch", previous_version="2", sha256="ab"
    )
    data = original.to_dict()
    assert data["trigger"] == "webhook" and data["outcome"] == "refused"
    assert HistoryEntry.from_dict(data) == original
    history = History(10, [HistoryEntry.from_dict(d) for d in [data]])
    assert history.to_list() == [data]
