"""The syncer against a real MLflow: publish, refuse, roll back, lose the alias, lose MLflow."""

from __future__ import annotations

import asyncio

import pytest
from brainscan_manifest import MODEL_FILE
from brainscan_modelsync.cache import PackageCache
from brainscan_modelsync.history import Outcome, Trigger
from brainscan_modelsync.metrics import ModelSyncMetrics
from brainscan_modelsync.mlflow_registry import MlflowRegistry
from brainscan_modelsync.syncer import ModelSyncer
from modelsync_packages import CONFUSED, good_package, wrong_class_count_package
from modelsync_servers import dead_url, modelsync_settings

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("mlflow_client_without_retries")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_syncer(tracking_uri: str, name: str, cache_dir, **overrides) -> ModelSyncer:
    settings = modelsync_settings(tracking_uri, name, cache_dir, **overrides)
    syncer = ModelSyncer(
        settings,
        MlflowRegistry(tracking_uri, follow_legacy_stage=settings.follow_legacy_stage),
        PackageCache(cache_dir, settings.cache_max_versions),
        ModelSyncMetrics(),
    )
    syncer.cache.prepare(name)
    return syncer


def outcomes(syncer: ModelSyncer, name: str) -> list[tuple[str | None, str, str]]:
    history = syncer.publications[name].history.newest_first()
    return [(e.version, str(e.trigger), str(e.outcome)) for e in reversed(history)]


async def sync(syncer: ModelSyncer, name: str, trigger: Trigger = Trigger.POLL):
    return await syncer.sync(name, trigger)


async def sync_challenger(syncer: ModelSyncer, name: str, trigger: Trigger = Trigger.POLL):
    return await syncer.sync_track(syncer.challengers[name], trigger)


async def serve_and_challenge(registry, syncer: ModelSyncer, tmp_path) -> tuple[str, str]:
    """Versions 1 (production) and 2 (challenger), both checked by ``syncer``."""
    v1 = registry.register(good_package(tmp_path / "v1", registry.name))
    v2 = registry.register(good_package(tmp_path / "v2", registry.name))
    registry.promote(v1)
    registry.challenge(v2)
    await sync(syncer, registry.name)
    await sync_challenger(syncer, registry.name)
    return v1, v2


def challenger_outcomes(syncer: ModelSyncer, name: str) -> list[tuple[str | None, str, str]]:
    history = syncer.challengers[name].history.newest_first()
    assert all(e.alias == "challenger" for e in history)
    return [(e.version, str(e.outcome), e.reason) for e in reversed(history)]


async def test_publishes_updates_and_rolls_back_from_the_cache(registry, tmp_path) -> None:
    name = registry.name
    syncer = make_syncer(registry.client.tracking_uri, name, tmp_path / "cache")
    v1 = registry.register(good_package(tmp_path / "v1", name))
    registry.promote(v1)
    assert (await sync(syncer, name, Trigger.STARTUP)).outcome == "published"
    assert syncer.publications[name].current.manifest.version == v1
    assert (await sync(syncer, name)).outcome == Outcome.UNCHANGED
    cached_v1 = syncer.cache.find(name, v1).stat().st_ino

    v2 = registry.register(good_package(tmp_path / "v2", name, CONFUSED))
    registry.promote(v2)
    result = await sync(syncer, name, Trigger.WEBHOOK)
    assert (result.outcome, result.version) == ("published", v2)

    registry.promote(v1)
    result = await sync(syncer, name, Trigger.MANUAL)
    assert (result.outcome, result.version) == ("rolled_back", v1)
    assert syncer.cache.find(name, v1).stat().st_ino == cached_v1  # not downloaded again
    assert outcomes(syncer, name) == [
        (v1, "startup", "published"),
        (v2, "webhook", "published"),
        (v1, "manual", "rolled_back"),
    ]
    assert syncer.publications[name].history.newest_first()[0].previous_version == v2


async def test_the_cache_keeps_a_bounded_number_of_versions(registry, tmp_path) -> None:
    name = registry.name
    syncer = make_syncer(
        registry.client.tracking_uri, name, tmp_path / "cache", cache_max_versions=2
    )
    versions = []
    for index in range(3):
        versions.append(registry.register(good_package(tmp_path / f"v{index}", name)))
        registry.promote(versions[-1])
        assert (await sync(syncer, name)).outcome == "published"
    assert sorted(syncer.cache.versions(name)) == sorted(versions[1:])


async def test_a_refused_version_is_recorded_once_and_the_served_one_stays(
    registry, tmp_path
) -> None:
    name = registry.name
    syncer = make_syncer(registry.client.tracking_uri, name, tmp_path / "cache")
    v1 = registry.register(good_package(tmp_path / "v1", name))
    registry.promote(v1)
    await sync(syncer, name)
    bad = registry.register_raw(wrong_class_count_package(tmp_path / "bad", name))
    registry.promote(bad)

    result = await sync(syncer, name, Trigger.WEBHOOK)
    assert result.outcome == "refused" and "3 probability outputs" in result.reason
    publication = syncer.publications[name]
    assert publication.current.version == v1
    assert f"names version {bad}, which was refused" in publication.degraded_reason
    assert syncer.cache.find(name, bad) is None
    assert list((syncer.cache.model_dir(name) / "incoming").iterdir()) == []

    again = await sync(syncer, name)
    assert again.outcome == Outcome.ALREADY_REFUSED and "3 probability outputs" in again.reason
    assert outcomes(syncer, name)[-1] == (bad, "webhook", "refused")  # recorded once
    refused = syncer.metrics.registry.get_sample_value(
        "brainscan_modelsync_versions_refused_total", {"model": name, "alias": "production"}
    )
    assert refused == 1

    registry.promote(v1)
    assert (await sync(syncer, name)).outcome == Outcome.UNCHANGED
    assert publication.degraded_reason is None
    assert outcomes(syncer, name)[-1] == (v1, "poll", "resumed")


async def test_a_changed_hash_tag_on_the_served_version_is_refused(registry, tmp_path) -> None:
    name = registry.name
    syncer = make_syncer(registry.client.tracking_uri, name, tmp_path / "cache")
    v1 = registry.register(good_package(tmp_path / "v1", name))
    registry.promote(v1)
    await sync(syncer, name)
    registry.set_tag(v1, "manifest.onnx_sha256", "0" * 64)
    result = await sync(syncer, name)
    assert result.outcome == "refused" and "tag of served version" in result.reason
    assert syncer.publications[name].current.version == v1


async def test_a_missing_alias_keeps_the_served_version_and_says_so(registry, tmp_path) -> None:
    name = registry.name
    syncer = make_syncer(registry.client.tracking_uri, name, tmp_path / "cache")
    assert (await sync(syncer, name)).outcome == "alias_missing"  # model not registered yet
    v1 = registry.register(good_package(tmp_path / "v1", name))
    registry.promote(v1)
    await sync(syncer, name)
    registry.remove_production()
    for _ in range(2):
        result = await sync(syncer, name)
        assert result.outcome == "alias_missing" and f"still serving version {v1}" in result.reason
    publication = syncer.publications[name]
    assert publication.current.version == v1 and publication.degraded_reason
    assert [o for _, _, o in outcomes(syncer, name)] == [
        "alias_missing",
        "published",
        "alias_missing",  # once, although checked twice
    ]


async def test_legacy_stage_versions_are_published_when_asked(registry, tmp_path) -> None:
    import warnings

    name = registry.name
    v1 = registry.register(good_package(tmp_path / "v1", name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        registry.client.transition_model_version_stage(name, v1, "Production")
    syncer = make_syncer(
        registry.client.tracking_uri, name, tmp_path / "cache", follow_legacy_stage=True
    )
    result = await sync(syncer, name)
    assert (result.outcome, result.version) == ("published", v1)
    assert syncer.publications[name].current.selected_by == "stage Production"


async def test_a_restart_without_mlflow_serves_the_verified_cache(registry, tmp_path) -> None:
    name = registry.name
    cache_dir = tmp_path / "cache"
    first = make_syncer(registry.client.tracking_uri, name, cache_dir)
    v1 = registry.register(good_package(tmp_path / "v1", name))
    registry.promote(v1)
    await sync(first, name)

    restarted = make_syncer(dead_url(), name, cache_dir, retry_initial_delay=0.05)
    restarted.start()
    try:
        for _ in range(200):
            if restarted.ready and restarted.registry_health.reachable is False:
                break
            await asyncio.sleep(0.02)
        assert restarted.publications[name].current.version == v1
        assert restarted.registry_health.reachable is False
        assert "MLflow" in restarted.registry_health.last_error
        assert outcomes(restarted, name)[-1] == (v1, "startup", "restored")
        samples = restarted.metrics.registry.get_sample_value
        # Retries with backoff (0.05 s, 0.1 s, ...) while the registry stays down.
        for _ in range(200):
            attempts = samples(
                "brainscan_modelsync_sync_runs_total",
                {"model": name, "trigger": "poll", "outcome": str(Outcome.REGISTRY_UNAVAILABLE)},
            )
            if attempts and attempts >= 2:
                break
            await asyncio.sleep(0.02)
        assert attempts >= 2
        assert samples("brainscan_modelsync_registry_up") == 0
    finally:
        await restarted.stop()


async def test_a_damaged_cached_copy_is_not_restored(registry, tmp_path) -> None:
    name = registry.name
    cache_dir = tmp_path / "cache"
    first = make_syncer(registry.client.tracking_uri, name, cache_dir)
    v1 = registry.register(good_package(tmp_path / "v1", name))
    registry.promote(v1)
    await sync(first, name)
    model = first.cache.find(name, v1) / MODEL_FILE
    model.write_bytes(model.read_bytes()[:100])

    restarted = make_syncer(dead_url(), name, cache_dir)
    await restarted._restore(restarted.publications[name])
    assert not restarted.ready
    assert outcomes(restarted, name)[-1][1:] == ("startup", "refused")
    assert "cached copy failed verification" in (
        restarted.publications[name].history.newest_first()[0].reason
    )


async def test_a_requested_sync_runs_at_once_and_reports_its_trigger(registry, tmp_path) -> None:
    name = registry.name
    syncer = make_syncer(registry.client.tracking_uri, name, tmp_path / "cache")
    v1 = registry.register(good_package(tmp_path / "v1", name))
    registry.promote(v1)
    syncer.start()
    try:
        for _ in range(500):
            if syncer.ready:
                break
            await asyncio.sleep(0.02)
        v2 = registry.register(good_package(tmp_path / "v2", name, CONFUSED))
        registry.promote(v2)
        result = await asyncio.wait_for(syncer.request_sync(name, Trigger.WEBHOOK), 30)
        assert (result.outcome, result.trigger, result.version) == ("published", "webhook", v2)
    finally:
        await syncer.stop()
    assert outcomes(syncer, name) == [(v1, "startup", "published"), (v2, "webhook", "published")]


async def test_each_followed_model_is_published_on_its_own(mlflow_server, tmp_path) -> None:
    from modelsync_registry import RegistryHelper

    first = RegistryHelper(mlflow_server.url, f"brainscan-test-a-{tmp_path.name[-6:]}")
    second = RegistryHelper(mlflow_server.url, f"brainscan-test-b-{tmp_path.name[-6:]}")
    first.promote(first.register(good_package(tmp_path / "a1", first.name)))
    settings = modelsync_settings(mlflow_server.url, first.name, tmp_path / "cache")
    settings = settings.model_copy(update={"models": [first.name, second.name]})
    syncer = ModelSyncer(
        settings,
        MlflowRegistry(mlflow_server.url),
        PackageCache(tmp_path / "cache", settings.cache_max_versions),
        ModelSyncMetrics(),
    )
    syncer.start()
    try:
        for _ in range(500):
            if syncer.publications[first.name].current is not None:
                break
            await asyncio.sleep(0.02)
        assert syncer.publications[first.name].current.version == "1"
        assert syncer.publications[second.name].current is None and not syncer.ready
        second.promote(second.register(good_package(tmp_path / "b1", second.name, CONFUSED)))
        result = await asyncio.wait_for(syncer.request_sync(second.name, Trigger.MANUAL), 30)
        assert result.outcome == "published" and syncer.ready
        assert syncer.cache.model_dir(first.name) != syncer.cache.model_dir(second.name)
    finally:
        await syncer.stop()


async def test_a_challenger_is_verified_and_published_beside_the_served_version(
    registry, tmp_path
) -> None:
    name = registry.name
    syncer = make_syncer(
        registry.client.tracking_uri, name, tmp_path / "cache", cache_max_versions=1
    )
    v1 = registry.register(good_package(tmp_path / "v1", name))
    v2 = registry.register(good_package(tmp_path / "v2", name, CONFUSED))
    registry.promote(v1)
    registry.challenge(v2)
    assert (await sync(syncer, name)).outcome == Outcome.PUBLISHED
    result = await sync_challenger(syncer, name, Trigger.WEBHOOK)
    assert (result.outcome, result.version) == (Outcome.PUBLISHED, v2)
    assert syncer.publications[name].current.version == v1  # what answers is unchanged
    shadow = syncer.challengers[name].current
    assert (shadow.version, shadow.selected_by) == (v2, "alias challenger")
    assert challenger_outcomes(syncer, name) == [
        (v2, "published", "alias challenger names version 2")
    ]
    assert all(e.alias == "production" for e in syncer.publications[name].history.newest_first())
    # One version per model in the cache, yet both in use are kept.
    assert sorted(syncer.cache.versions(name)) == sorted([v1, v2])
    labels = {"model": name, "alias": "challenger", "version": v2, "sha256": shadow.sha256}
    info = syncer.metrics.registry.get_sample_value
    assert info("brainscan_modelsync_published_model_info", labels) == 1
    assert (await sync_challenger(syncer, name)).outcome == Outcome.UNCHANGED


async def test_removing_or_promoting_the_challenger_withdraws_it(registry, tmp_path) -> None:
    name = registry.name
    syncer = make_syncer(registry.client.tracking_uri, name, tmp_path / "cache")
    _, v2 = await serve_and_challenge(registry, syncer, tmp_path)

    registry.remove_challenger()
    assert (await sync_challenger(syncer, name)).outcome == Outcome.ALIAS_MISSING
    assert syncer.challengers[name].current is None
    assert syncer.publications[name].degraded_reason is None  # no challenger is no problem
    assert challenger_outcomes(syncer, name)[-1] == (
        None, "withdrawn", f"the registry has no alias 'challenger' for {name}"
    )  # fmt: skip

    registry.challenge(v2)
    assert (await sync_challenger(syncer, name)).outcome == Outcome.PUBLISHED
    registry.promote(v2)  # promoted with its alias left in place: it is what serves now
    assert (await sync(syncer, name)).outcome == Outcome.PUBLISHED
    await sync_challenger(syncer, name)
    assert syncer.challengers[name].current is None
    assert challenger_outcomes(syncer, name)[-1][1:] == (
        "withdrawn", f"alias challenger names version {v2}, the one served"
    )  # fmt: skip


async def test_a_refused_challenger_is_withdrawn_and_the_served_version_stays_healthy(
    registry, tmp_path
) -> None:
    name = registry.name
    syncer = make_syncer(registry.client.tracking_uri, name, tmp_path / "cache")
    await serve_and_challenge(registry, syncer, tmp_path)
    bad = registry.register_raw(wrong_class_count_package(tmp_path / "bad", name))
    registry.challenge(bad)

    result = await sync_challenger(syncer, name)
    assert result.outcome == Outcome.REFUSED and "3 probability outputs" in result.reason
    assert syncer.challengers[name].current is None  # not the previous challenger either
    assert [entry[:2] for entry in challenger_outcomes(syncer, name)[-2:]] == [
        (bad, "refused"), (None, "withdrawn")
    ]  # fmt: skip
    assert syncer.publications[name].degraded_reason is None
    assert syncer.metrics.registry.get_sample_value(
        "brainscan_modelsync_degraded", {"model": name}
    ) in (None, 0)
    assert (await sync_challenger(syncer, name)).outcome == Outcome.ALREADY_REFUSED


async def test_a_restart_restores_the_challenger_from_the_cache(registry, tmp_path) -> None:
    name = registry.name
    cache_dir = tmp_path / "cache"
    first = make_syncer(registry.client.tracking_uri, name, cache_dir)
    v1 = registry.register(good_package(tmp_path / "v1", name))
    v2 = registry.register(good_package(tmp_path / "v2", name))
    registry.promote(v1)
    registry.challenge(v2)
    await sync(first, name)
    await sync_challenger(first, name)

    restarted = make_syncer(dead_url(), name, cache_dir)
    await restarted._restore(restarted.publications[name])
    await restarted._restore(restarted.challengers[name])
    assert restarted.publications[name].current.version == v1
    assert restarted.challengers[name].current.version == v2
    assert challenger_outcomes(restarted, name)[-1][:2] == (v2, "restored")


async def test_without_a_challenger_alias_there_is_no_shadow_track(registry, tmp_path) -> None:
    syncer = make_syncer(
        registry.client.tracking_uri, registry.name, tmp_path / "cache", challenger_alias=""
    )
    assert syncer.challengers == {} and syncer.tracks == list(syncer.publications.values())
