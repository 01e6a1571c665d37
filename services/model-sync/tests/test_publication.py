"""Publication and long poll: wait for a version other than the one known, wake on publish."""

from __future__ import annotations

import asyncio

import pytest
from brainscan_manifest import Manifest
from brainscan_modelsync.cache import PackageCache
from brainscan_modelsync.history import HistoryEntry, Outcome, Trigger
from brainscan_modelsync.publication import Publication, PublishedVersion
from modelsync_packages import good_package

pytestmark = pytest.mark.anyio
NAME = "brainscan-test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def manifest(tmp_path) -> Manifest:
    return Manifest.load(good_package(tmp_path / "pkg", NAME) / "manifest.json")


def version(manifest: Manifest, number: str, tmp_path) -> PublishedVersion:
    return PublishedVersion(
        NAME, number, manifest.with_version(number), tmp_path, "2027-01-01T00:00:00Z", "alias"
    )


def published(number: str) -> HistoryEntry:
    return HistoryEntry(number, Trigger.POLL, Outcome.PUBLISHED, "test")


async def test_a_caller_without_the_current_version_gets_it_at_once(tmp_path, manifest) -> None:
    publication = Publication(NAME, PackageCache(tmp_path, 2), 10)
    publication.publish(version(manifest, "1", tmp_path), published("1"))
    for known in (None, "0", "2"):
        current = await asyncio.wait_for(publication.wait_for_change(known, 30), 5)
        assert current.version == "1"


async def test_a_caller_with_the_current_version_waits_for_the_next(tmp_path, manifest) -> None:
    publication = Publication(NAME, PackageCache(tmp_path, 2), 10)
    publication.publish(version(manifest, "1", tmp_path), published("1"))
    waiting = [asyncio.ensure_future(publication.wait_for_change("1", 30)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiting) and publication.waiting == 3
    publication.publish(version(manifest, "2", tmp_path), published("2"))
    results = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert [r.version for r in results] == ["2", "2", "2"]
    assert publication.waiting == 0


async def test_a_long_poll_ends_at_its_timeout_with_the_same_version(tmp_path, manifest) -> None:
    publication = Publication(NAME, PackageCache(tmp_path, 2), 10)
    publication.publish(version(manifest, "1", tmp_path), published("1"))
    current = await asyncio.wait_for(publication.wait_for_change("1", 0.1), 5)
    assert current.version == "1"


async def test_before_any_version_a_long_poll_waits_for_the_first(tmp_path, manifest) -> None:
    publication = Publication(NAME, PackageCache(tmp_path, 2), 10)
    assert await publication.wait_for_change(None, 0.05) is None
    first = asyncio.ensure_future(publication.wait_for_change(None, 30))
    await asyncio.sleep(0.05)
    assert not first.done()
    publication.publish(version(manifest, "1", tmp_path), published("1"))
    assert (await asyncio.wait_for(first, 5)).version == "1"


async def test_the_served_version_and_history_survive_a_restart(tmp_path, manifest) -> None:
    cache = PackageCache(tmp_path, 2)
    publication = Publication(NAME, cache, 10)
    publication.publish(version(manifest, "1", tmp_path), published("1"))
    publication.record(HistoryEntry("2", Trigger.WEBHOOK, Outcome.REFUSED, "bad"))
    again = Publication(NAME, cache, 10)
    assert again.current is None  # serving again needs verification first (the syncer's job)
    assert again.saved_version == "1" and again.saved_sha256 == manifest.onnx_sha256
    assert [(e.version, e.outcome) for e in again.history.newest_first()] == [
        ("2", Outcome.REFUSED),
        ("1", Outcome.PUBLISHED),
    ]
