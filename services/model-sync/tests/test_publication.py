"""Publication: the served version, refusals, the degraded reason and the history it records,
and the long poll (wait for a version other than the one known, wake on publish)."""

from __future__ import annotations

import asyncio

import pytest
from brainscan_manifest import Manifest
from brainscan_modelsync.cache import PackageCache
from brainscan_modelsync.history import Outcome, Trigger
from brainscan_modelsync.metrics import ModelSyncMetrics
from brainscan_modelsync.mlflow_registry import RegistryVersion
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


def new_publication(cache: PackageCache) -> Publication:
    return Publication(NAME, cache, ModelSyncMetrics(), 10)


def publish(publication: Publication, manifest: Manifest, number: str, tmp_path) -> None:
    publication.publish(
        version(manifest, number, tmp_path), Outcome.PUBLISHED, "test", Trigger.POLL
    )


def target(number: str, sha256: str | None = "ab" * 32) -> RegistryVersion:
    return RegistryVersion(NAME, number, "models:/x", sha256, "alias production")


def new_shadow(cache: PackageCache) -> Publication:
    return Publication(NAME, cache, ModelSyncMetrics(), 10, alias="challenger", shadow=True)


def sample(publication: Publication, metric: str, **labels: str) -> float | None:
    return publication.metrics.registry.get_sample_value(metric, {"model": NAME, **labels})


async def test_a_caller_without_the_current_version_gets_it_at_once(tmp_path, manifest) -> None:
    publication = new_publication(PackageCache(tmp_path, 2))
    publish(publication, manifest, "1", tmp_path)
    for known in (None, "0", "2"):
        current = await asyncio.wait_for(publication.wait_for_change(known, 30), 5)
        assert current.version == "1"


async def test_a_caller_with_the_current_version_waits_for_the_next(tmp_path, manifest) -> None:
    publication = new_publication(PackageCache(tmp_path, 2))
    publish(publication, manifest, "1", tmp_path)
    waiting = [asyncio.ensure_future(publication.wait_for_change("1", 30)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiting) and publication.waiting == 3
    publish(publication, manifest, "2", tmp_path)
    results = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert [r.version for r in results] == ["2", "2", "2"]
    assert publication.waiting == 0


async def test_a_long_poll_ends_at_its_timeout_with_the_same_version(tmp_path, manifest) -> None:
    publication = new_publication(PackageCache(tmp_path, 2))
    publish(publication, manifest, "1", tmp_path)
    current = await asyncio.wait_for(publication.wait_for_change("1", 0.1), 5)
    assert current.version == "1"


async def test_before_any_version_a_long_poll_waits_for_the_first(tmp_path, manifest) -> None:
    publication = new_publication(PackageCache(tmp_path, 2))
    assert await publication.wait_for_change(None, 0.05) is None
    first = asyncio.ensure_future(publication.wait_for_change(None, 30))
    await asyncio.sleep(0.05)
    assert not first.done()
    publish(publication, manifest, "1", tmp_path)
    assert (await asyncio.wait_for(first, 5)).version == "1"


async def test_the_served_version_and_history_survive_a_restart(tmp_path, manifest) -> None:
    cache = PackageCache(tmp_path, 2)
    publication = new_publication(cache)
    publish(publication, manifest, "1", tmp_path)
    publication.refuse(target("2"), Trigger.WEBHOOK, "bad")
    again = new_publication(cache)
    assert again.current is None  # serving again needs verification first (the syncer's job)
    assert again.saved_version == "1" and again.saved_sha256 == manifest.onnx_sha256
    assert [(e.version, e.outcome) for e in again.history.newest_first()] == [
        ("2", Outcome.REFUSED),
        ("1", Outcome.PUBLISHED),
    ]


async def test_a_refusal_is_remembered_until_the_next_publication(tmp_path, manifest) -> None:
    publication = new_publication(PackageCache(tmp_path, 2))
    publish(publication, manifest, "1", tmp_path)
    publication.refuse(target("2"), Trigger.WEBHOOK, "sha256 mismatch")
    assert publication.current.version == "1"
    assert publication.refusal("2", "ab" * 32) == "sha256 mismatch"
    assert publication.refusal("2", "cd" * 32) is None  # another tag: checked again
    assert publication.degraded_reason == (
        "alias production names version 2, which was refused; still serving version 1"
    )
    entry = publication.history.newest_first()[0]
    assert (entry.version, entry.trigger, entry.outcome, entry.previous_version) == (
        "2",
        Trigger.WEBHOOK,
        Outcome.REFUSED,
        "1",
    )
    assert (
        sample(publication, "brainscan_modelsync_versions_refused_total", alias="production") == 1
    )
    assert sample(publication, "brainscan_modelsync_degraded") == 1

    publish(publication, manifest, "3", tmp_path)
    assert publication.refusal("2", "ab" * 32) is None and publication.degraded_reason is None
    assert sample(publication, "brainscan_modelsync_degraded") == 0
    assert (
        sample(
            publication,
            "brainscan_modelsync_versions_published_total",
            alias="production",
            outcome="published",
        )
        == 2
    )


async def test_a_missing_alias_is_recorded_once_and_cleared_when_named_again(
    tmp_path, manifest
) -> None:
    publication = new_publication(PackageCache(tmp_path, 2))
    publish(publication, manifest, "1", tmp_path)
    for _ in range(2):
        reason = publication.alias_missing(Trigger.POLL, "no alias")
        assert reason == "no alias; still serving version 1" == publication.degraded_reason
    assert sample(publication, "brainscan_modelsync_degraded") == 1
    publication.named_again(target("1", manifest.onnx_sha256), Trigger.POLL)
    publication.named_again(target("1", manifest.onnx_sha256), Trigger.POLL)
    assert publication.degraded_reason is None
    assert sample(publication, "brainscan_modelsync_degraded") == 0
    assert [e.outcome for e in publication.history.newest_first()] == [
        Outcome.RESUMED,
        Outcome.ALIAS_MISSING,  # once, although reported twice
        Outcome.PUBLISHED,
    ]


async def test_a_cached_copy_refused_on_start_is_recorded(tmp_path) -> None:
    publication = new_publication(PackageCache(tmp_path, 2))
    publication.refuse_cached("4", "the cached copy failed verification: truncated")
    entry = publication.history.newest_first()[0]
    assert (entry.version, entry.trigger, entry.outcome) == ("4", Trigger.STARTUP, Outcome.REFUSED)
    assert publication.degraded_reason is None and publication.refusal("4", None) is None
    assert (
        sample(publication, "brainscan_modelsync_versions_refused_total", alias="production") == 1
    )


async def test_a_withdrawn_shadow_version_answers_its_long_poll_at_once(tmp_path, manifest):
    shadow = new_shadow(PackageCache(tmp_path, 2))
    publish(shadow, manifest, "2", tmp_path)
    waiting = asyncio.create_task(shadow.wait_for_change("2", 30))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    shadow.withdraw(Trigger.WEBHOOK, "the registry has no alias 'challenger'")
    assert await asyncio.wait_for(waiting, 5) is None  # withdrawn: a change, answered at once
    # A caller that knows of no shadow version waits for the next one.
    later = asyncio.create_task(shadow.wait_for_change(None, 30))
    await asyncio.sleep(0.05)
    assert not later.done()
    publish(shadow, manifest, "3", tmp_path)
    assert (await asyncio.wait_for(later, 5)).version == "3"


async def test_a_shadow_version_is_withdrawn_when_refused_and_never_degrades(tmp_path, manifest):
    shadow = new_shadow(PackageCache(tmp_path, 2))
    publish(shadow, manifest, "2", tmp_path)
    shadow.refuse(target("3"), Trigger.POLL, "3 probability outputs")
    assert shadow.current is None and shadow.degraded_reason is None
    assert shadow.refusal("3", "ab" * 32) == "3 probability outputs"
    entries = [(e.version, str(e.outcome), e.alias) for e in shadow.history.newest_first()]
    assert entries[:2] == [(None, "withdrawn", "challenger"), ("3", "refused", "challenger")]
    assert sample(shadow, "brainscan_modelsync_degraded") is None  # the gauge is the served's
    assert sample(shadow, "brainscan_modelsync_versions_refused_total", alias="challenger") == 1
    shadow.alias_missing(Trigger.POLL, "no alias")  # nothing left to withdraw: not recorded
    assert len(shadow.history.newest_first()) == 3


async def test_a_withdrawn_shadow_version_is_not_restored_after_a_restart(tmp_path, manifest):
    cache = PackageCache(tmp_path, 2)
    shadow = new_shadow(cache)
    publish(shadow, manifest, "2", tmp_path)
    assert new_shadow(cache).saved_version == "2"
    served = new_publication(cache)  # its own state file: the shadow's does not leak into it
    assert served.saved_version is None
    shadow.withdraw(Trigger.POLL, "promoted")
    restarted = new_shadow(cache)
    assert restarted.saved_version is None
    assert str(restarted.history.newest_first()[0].outcome) == "withdrawn"
