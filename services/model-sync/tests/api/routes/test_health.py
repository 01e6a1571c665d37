"""Liveness, readiness with details, and the Prometheus metrics, over real HTTP."""

from __future__ import annotations

import httpx
from modelsync_packages import good_package, wrong_class_count_package
from modelsync_servers import published_version, start_modelsync, wait_until


def test_not_ready_until_a_version_is_published_then_ready(registry, servers, tmp_path) -> None:
    modelsync = start_modelsync(
        servers, registry.client.tracking_uri, registry.name, tmp_path / "cache", webhooks=False
    )
    assert httpx.get(f"{modelsync.url}/healthz").json() == {"live": True}
    wait_until(lambda: httpx.get(f"{modelsync.url}/readyz").json()["registry"]["reachable"])
    waiting = httpx.get(f"{modelsync.url}/readyz")
    assert waiting.status_code == 503 and waiting.headers["retry-after"] == "1"
    body = waiting.json()
    assert body["ready"] is False and body["status"] == "not_ready"
    assert "no alias 'production'" in body["models"][registry.name]["degraded_reason"]
    assert body["webhook"]["state"] == "disabled"

    registry.promote(registry.register(good_package(tmp_path / "v1", registry.name)))
    httpx.post(f"{modelsync.url}/v1/models/{registry.name}/sync", timeout=60)
    ready = httpx.get(f"{modelsync.url}/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["status"] == "ok"
    model = body["models"][registry.name]
    assert model["version"] == "1" and model["degraded_reason"] is None
    assert model["last_success_at"] is not None and model["sync_lag_seconds"] >= 0
    assert body["registry"] == {
        "url": registry.client.tracking_uri,
        "reachable": True,
        "last_error": None,
        "last_error_at": None,
    }


def test_a_refused_version_makes_readiness_degraded_but_still_ready(
    registry, servers, tmp_path
) -> None:
    registry.promote(registry.register(good_package(tmp_path / "v1", registry.name)))
    modelsync = start_modelsync(
        servers, registry.client.tracking_uri, registry.name, tmp_path / "cache", webhooks=False
    )
    wait_until(lambda: published_version(modelsync, registry.name) == "1")
    registry.promote(
        registry.register_raw(wrong_class_count_package(tmp_path / "v2", registry.name))
    )
    httpx.post(f"{modelsync.url}/v1/models/{registry.name}/sync", timeout=60)
    ready = httpx.get(f"{modelsync.url}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "degraded"
    assert "which was refused" in ready.json()["models"][registry.name]["degraded_reason"]
    current = httpx.get(f"{modelsync.url}/v1/models/{registry.name}").json()
    assert current["version"] == "1" and current["status"] == "degraded"


def test_metrics_describe_syncs_refusals_and_the_registry(registry, servers, tmp_path) -> None:
    registry.promote(registry.register(good_package(tmp_path / "v1", registry.name)))
    modelsync = start_modelsync(
        servers, registry.client.tracking_uri, registry.name, tmp_path / "cache", webhooks=False
    )
    wait_until(lambda: published_version(modelsync, registry.name) == "1")
    httpx.get(f"{modelsync.url}/v1/models/{registry.name}/versions/1/artifact")
    response = httpx.get(f"{modelsync.url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/")
    text = response.text
    name = registry.name
    for sample in (
        f'brainscan_modelsync_sync_runs_total{{model="{name}",outcome="published",'
        f'trigger="startup"}} 1.0',
        f'brainscan_modelsync_versions_published_total{{alias="production",model="{name}",'
        f'outcome="published"}} 1.0',
        f'brainscan_modelsync_published_model_info{{alias="production",model="{name}",sha256="',
        "brainscan_modelsync_registry_up 1.0",
        f'brainscan_modelsync_last_success_timestamp_seconds{{model="{name}"}}',
        f'brainscan_modelsync_sync_lag_seconds{{model="{name}"}}',
        f'brainscan_modelsync_degraded{{model="{name}"}} 0.0',
        f'brainscan_modelsync_artifact_requests_total{{model="{name}",outcome="sent"}} 1.0',
        "brainscan_modelsync_long_polls_waiting 0.0",
        f'brainscan_modelsync_cache_versions{{model="{name}"}} 1.0',
        "brainscan_modelsync_webhook_registered 0.0",
    ):
        assert sample in text, sample
