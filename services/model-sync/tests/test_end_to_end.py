"""MLflow -> model-sync -> inference, all real, over loopback, under a continuous request stream.

Each test runs a stream of inference requests through every swap and asserts that not one of
them failed. Deadlines are the functional ones the service promises (2 s after the alias moves
with webhooks, one poll interval without); everything else waits generously.
"""

from __future__ import annotations

import httpx
import pytest
from modelsync_mlflow import start_mlflow
from modelsync_packages import (
    CONFUSED,
    good_package,
    truncated_package,
    wrong_class_count_package,
)
from modelsync_registry import RegistryHelper
from modelsync_servers import (
    RequestStream,
    history,
    published_version,
    served_version,
    start_inference,
    start_modelsync,
    wait_until,
)

pytestmark = pytest.mark.slow


def readiness(server) -> dict:
    return httpx.get(f"{server.url}/readyz", timeout=5).json()


def start_webhooked_modelsync(registry, servers, tmp_path):
    """model-sync with its MLflow webhook registered, polling only every 60 s."""
    modelsync = start_modelsync(
        servers, registry.client.tracking_uri, registry.name, tmp_path / "sync", poll_interval=60.0
    )
    wait_until(lambda: readiness(modelsync)["webhook"]["state"] == "registered")
    return modelsync


def refusal_reason(modelsync, model: str, version: str) -> str | None:
    for entry in history(modelsync, model):
        if entry["version"] == version and entry["outcome"] == "refused":
            return entry["reason"]
    return None


def test_inference_follows_production_through_updates_refusals_and_rollback(
    registry, servers, tmp_path
) -> None:
    name = registry.name
    modelsync = start_webhooked_modelsync(registry, servers, tmp_path)
    replica = start_inference(servers, modelsync.url, name, tmp_path / "replica-1")
    assert httpx.get(f"{replica.url}/v2/health/ready").status_code == 503  # nothing promoted

    # Register v1 and promote: inference serves v1.
    v1 = registry.register(good_package(tmp_path / "v1", name))
    registry.promote(v1)
    wait_until(lambda: served_version(replica, name) == v1, timeout=10, what="v1 served")

    with RequestStream(replica.url, name) as stream:
        wait_until(lambda: stream.count() > 20)

        # Register v2 and promote: served within 2 s (webhook; polling is every 60 s here).
        v2 = registry.register(good_package(tmp_path / "v2", name, CONFUSED))
        registry.promote(v2)
        wait_until(
            lambda: served_version(replica, name) == v2,
            timeout=2.0,
            what="v2 served within 2 s of the alias moving",
        )

        # Corrupt v3s promoted: each refused, v2 keeps serving, the history says why.
        wrong_tag = registry.register(good_package(tmp_path / "v3-tag", name))
        registry.set_tag(wrong_tag, "manifest.onnx_sha256", "0" * 64)
        truncated = registry.register_raw(truncated_package(tmp_path / "v3-cut", name))
        classes = registry.register_raw(wrong_class_count_package(tmp_path / "v3-cls", name))
        expected = {
            wrong_tag: "sha256 mismatch",
            truncated: "ONNX checker failed",
            classes: "3 probability outputs, manifest lists 4 classes",
        }
        for version, reason in expected.items():
            registry.promote(version)
            wait_until(
                lambda v=version: refusal_reason(modelsync, name, v) is not None,
                what=f"version {version} refused",
            )
            assert reason in refusal_reason(modelsync, name, version)
            assert published_version(modelsync, name) == v2
            assert served_version(replica, name) == v2
            status = readiness(modelsync)
            assert status["ready"] and status["status"] == "degraded"

        # Alias back to v1: rollback through the same path.
        registry.promote(v1)
        wait_until(lambda: served_version(replica, name) == v1, timeout=10, what="rollback")

        # A replica started now (the autoscaler's) gets the current model at start.
        late = start_inference(servers, modelsync.url, name, tmp_path / "replica-2")
        wait_until(lambda: served_version(late, name) == v1, timeout=20, what="late replica")
        count = stream.count()
        wait_until(lambda: stream.count() > count + 20)

    assert stream.failures() == [], "an inference request failed during a swap"
    assert {version for _, version in stream.answers} == {v1, v2}
    entries = [(e["version"], e["trigger"], e["outcome"]) for e in history(modelsync, name)]
    assert entries[::-1] == [
        (None, "startup", "alias_missing"),
        (v1, "webhook", "published"),
        (v2, "webhook", "published"),
        (wrong_tag, "webhook", "refused"),
        (truncated, "webhook", "refused"),
        (classes, "webhook", "refused"),
        (v1, "webhook", "rolled_back"),
    ]


def test_polling_alone_follows_the_registry_within_one_interval(
    registry, servers, tmp_path
) -> None:
    name = registry.name
    poll_interval = 3.0
    # What follows the model-sync poll: download, verify, long-poll wake-up, load, warm, swap.
    handling = 2.0
    v1 = registry.register(good_package(tmp_path / "v1", name))
    registry.promote(v1)
    modelsync = start_modelsync(
        servers,
        registry.client.tracking_uri,
        name,
        tmp_path / "sync",
        webhooks=False,
        poll_interval=poll_interval,
    )
    replica = start_inference(servers, modelsync.url, name, tmp_path / "replica")
    wait_until(lambda: served_version(replica, name) == v1, timeout=20, what="v1 served")

    with RequestStream(replica.url, name) as stream:
        v2 = registry.register(good_package(tmp_path / "v2", name, CONFUSED))
        registry.promote(v2)
        wait_until(
            lambda: served_version(replica, name) == v2,
            timeout=poll_interval + handling,
            what="v2 served within one poll interval",
        )
        assert history(modelsync, name)[0]["trigger"] == "poll"

        # Alias deleted: the last good version keeps serving and health says degraded.
        registry.remove_production()
        wait_until(
            lambda: history(modelsync, name)[0]["outcome"] == "alias_missing",
            timeout=poll_interval + handling,
        )
        status = readiness(modelsync)
        assert status["ready"] and status["status"] == "degraded"
        assert "no alias 'production'" in status["models"][name]["degraded_reason"]
        assert served_version(replica, name) == v2
        registry.promote(v2)
        wait_until(lambda: readiness(modelsync)["status"] == "ok", timeout=poll_interval + 2)
        assert history(modelsync, name)[0]["outcome"] == "resumed"

    assert stream.failures() == [], "an inference request failed during a swap"


def test_mlflow_down_both_keep_serving_and_a_restart_serves_from_the_cache(
    tmp_path, model_name
) -> None:
    # A server of its own: this test stops it.
    mlflow = start_mlflow(tmp_path / "mlflow")
    running = []
    try:
        registry = RegistryHelper(mlflow.url, model_name)
        v1 = registry.register(good_package(tmp_path / "v1", model_name))
        registry.promote(v1)
        options = {"poll_interval": 1.0, "retry_initial_delay": 0.2}
        modelsync = start_modelsync(running, mlflow.url, model_name, tmp_path / "sync", **options)
        replica = start_inference(running, modelsync.url, model_name, tmp_path / "replica-1")
        wait_until(lambda: served_version(replica, model_name) == v1, timeout=20)

        with RequestStream(replica.url, model_name) as stream:
            mlflow.stop()
            wait_until(lambda: readiness(modelsync)["registry"]["reachable"] is False)
            status = readiness(modelsync)
            assert status["ready"] and status["status"] == "degraded"
            assert status["registry"]["last_error"]
            metrics = httpx.get(f"{modelsync.url}/metrics").text
            assert "brainscan_modelsync_registry_up 0.0" in metrics
            assert published_version(modelsync, model_name) == v1
            count = stream.count()
            wait_until(lambda: stream.count() > count + 20, what="inference keeps serving")

            # model-sync restarted (same port, same cache) with MLflow still down.
            modelsync.stop()
            modelsync = start_modelsync(
                running, mlflow.url, model_name, tmp_path / "sync", port=modelsync.port, **options
            )
            wait_until(lambda: readiness(modelsync)["ready"], what="ready from the cache")
            assert published_version(modelsync, model_name) == v1
            assert history(modelsync, model_name)[0]["outcome"] == "restored"
            assert readiness(modelsync)["registry"]["reachable"] is False
            late = start_inference(running, modelsync.url, model_name, tmp_path / "replica-2")
            wait_until(lambda: served_version(late, model_name) == v1, timeout=20)

            # MLflow back: model-sync notices on its next retry and follows the registry again.
            mlflow = start_mlflow(tmp_path / "mlflow", port=mlflow.port, key=mlflow.encryption_key)
            wait_until(lambda: readiness(modelsync)["registry"]["reachable"] is True, timeout=20)
            registry = RegistryHelper(mlflow.url, model_name)
            v2 = registry.register(good_package(tmp_path / "v2", model_name, CONFUSED))
            registry.promote(v2)
            for server in (replica, late):
                wait_until(lambda s=server: served_version(s, model_name) == v2, timeout=20)
            count = stream.count()
            wait_until(lambda: stream.count() > count + 20)

        assert stream.failures() == [], "an inference request failed"
        assert {version for _, version in stream.answers} == {v1, v2}
    finally:
        for server in reversed(running):
            server.stop()
        mlflow.stop()


def _infer(replica, name: str, version: str | None, body: dict) -> httpx.Response:
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/infer"
    return httpx.post(f"{replica.url}{path}", json=body, timeout=30)


def test_a_replica_holds_the_challenger_beside_production_and_answers_it_only_by_version(
    registry, servers, tmp_path
) -> None:
    name = registry.name
    modelsync = start_webhooked_modelsync(registry, servers, tmp_path)
    v1 = registry.register(good_package(tmp_path / "v1", name))
    v2 = registry.register(good_package(tmp_path / "v2", name, CONFUSED))
    registry.promote(v1)
    replica = start_inference(servers, modelsync.url, name, tmp_path / "replica")
    wait_until(lambda: served_version(replica, name) == v1, what="v1 served")
    body = RequestStream(replica.url, name).body
    absent = _infer(replica, name, v2, body)
    assert absent.status_code == 404 and absent.json()["code"] == "version_not_found"

    with RequestStream(replica.url, name) as stream:
        registry.challenge(v2)  # the webhook tells model-sync; its long poll tells the replica
        wait_until(
            lambda: _infer(replica, name, v2, body).status_code == 200,
            timeout=10,
            what="the challenger answering by its version",
        )
        assert _infer(replica, name, v2, body).json()["model_version"] == v2
        challenger = httpx.get(f"{replica.url}/v2/models/{name}/challenger/manifest").json()
        assert challenger["version"] == v2
        assert _infer(replica, name, None, body).json()["model_version"] == v1
        metrics = httpx.get(f"{replica.url}/metrics", timeout=5).text
        assert f'brainscan_inference_challenger{{model="{name}",version="{v2}"}} 1.0' in metrics
        assert 'brainscan_inference_model_bytes{role="challenger"}' in metrics

        registry.remove_challenger()
        wait_until(
            lambda: _infer(replica, name, v2, body).status_code == 404,
            timeout=10,
            what="the withdrawn challenger gone from the replica",
        )
        absent = httpx.get(f"{replica.url}/v2/models/{name}/challenger/manifest")
        assert absent.status_code == 404 and absent.json()["code"] == "no_challenger"
        wait_until(lambda: stream.count() > 20)
    # Unversioned traffic never saw the challenger, and never failed while it came and went.
    assert stream.failures() == []
    assert {version for _, version in stream.answers} == {v1}
    assert httpx.get(f"{replica.url}/v2/health/ready").status_code == 200
