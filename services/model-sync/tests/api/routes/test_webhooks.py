"""The webhook endpoint: only signed, fresh, first-seen MLflow events trigger a sync."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from brainscan_modelsync.webhook_signature import sign
from modelsync_packages import CONFUSED, good_package
from modelsync_servers import (
    SECRET,
    history,
    published_version,
    start_modelsync,
    wait_until,
)


@pytest.fixture
def receiver(registry, servers, tmp_path):
    """model-sync serving v1 that accepts webhooks but is not registered in MLflow (so the
    only deliveries are the ones a test sends), and polls only every 60 s; v2 exists in MLflow
    and already holds the alias."""
    registry.promote(registry.register(good_package(tmp_path / "v1", registry.name)))
    modelsync = start_modelsync(
        servers,
        registry.client.tracking_uri,
        registry.name,
        tmp_path / "cache",
        webhooks=False,
        webhook_secret=SECRET,
    )
    wait_until(lambda: published_version(modelsync, registry.name) == "1")
    registry.promote(registry.register(good_package(tmp_path / "v2", registry.name, CONFUSED)))
    return modelsync


def event(name: str, alias: str = "production", entity: str = "model_version_alias") -> bytes:
    return json.dumps(
        {
            "entity": entity,
            "action": "created",
            "timestamp": "2027-01-15T08:00:00+00:00",
            "data": {"name": name, "alias": alias, "version": "2"},
        }
    ).encode()


def deliver(
    server,
    body: bytes,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    delivery_id: str | None = None,
    signature: str | None = None,
) -> httpx.Response:
    delivery_id = delivery_id or str(uuid.uuid4())
    timestamp_text = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp_text,
        "X-MLflow-Signature": signature or sign(secret, delivery_id, timestamp_text, body),
    }
    return httpx.post(f"{server.url}/v1/webhooks/mlflow", content=body, headers=headers)


def rejected_count(server) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    for line in text.splitlines():
        if line.startswith('brainscan_modelsync_webhooks_total{outcome="rejected"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        ({"secret": "not-the-shared-secret"}, "signature does not match"),
        ({"signature": "v1,c2lnbmF0dXJl"}, "signature does not match"),
        ({"timestamp": int(time.time()) - 3600}, "stale timestamp"),
        ({"timestamp": int(time.time()) + 3600}, "stale timestamp"),
    ],
    ids=["wrong-secret", "garbage-signature", "stale", "from-the-future"],
)
def test_a_forged_or_stale_webhook_is_401_and_changes_nothing(
    receiver, registry, forge, reason
) -> None:
    before = history(receiver, registry.name)
    response = deliver(receiver, event(registry.name), **forge)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "webhook_signature" and reason in error["message"]
    time.sleep(0.5)  # a sync, had one been triggered, would have published v2 by now
    assert published_version(receiver, registry.name) == "1"
    assert history(receiver, registry.name) == before
    assert rejected_count(receiver) == 1


def test_a_webhook_without_signature_headers_is_401(receiver, registry) -> None:
    response = httpx.post(f"{receiver.url}/v1/webhooks/mlflow", content=event(registry.name))
    assert response.status_code == 401
    assert "missing x-mlflow-signature" in response.json()["error"]["message"]


def test_a_signed_alias_event_triggers_a_sync_and_its_replay_is_refused(receiver, registry) -> None:
    body = event(registry.name)
    first = deliver(receiver, body, delivery_id="delivery-1")
    assert first.status_code == 202
    assert first.json() == {
        "accepted": True,
        "delivery_id": "delivery-1",
        "model": registry.name,
        "sync": "scheduled",
    }
    wait_until(lambda: published_version(receiver, registry.name) == "2", what="v2 published")
    assert history(receiver, registry.name)[0]["trigger"] == "webhook"

    replay = deliver(receiver, body, delivery_id="delivery-1")
    assert replay.status_code == 401 and "replay" in replay.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "ignored"),
    [
        (lambda name: event("another-model"), "is not followed"),
        (lambda name: event(name, alias="staging"), "is not a followed alias"),
        (lambda name: event(name, entity="model_version_tag"), "does not change what is served"),
    ],
    ids=["other-model", "other-alias", "other-event"],
)
def test_events_that_do_not_concern_the_served_model_are_ignored(
    receiver, registry, body, ignored
) -> None:
    response = deliver(receiver, body(registry.name))
    assert response.status_code == 200
    assert response.json()["accepted"] is True and ignored in response.json()["ignored"]
    time.sleep(0.3)
    assert published_version(receiver, registry.name) == "1"


def test_a_signed_body_that_is_not_an_event_is_400(receiver) -> None:
    for body in (b"not json", b"[]", b'{"entity": "x"}', b'{"entity":"a","action":"b","data":1}'):
        response = deliver(receiver, body)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "webhook_payload"


def test_an_oversized_body_is_413(receiver) -> None:
    response = deliver(receiver, b"{" + b" " * 70_000 + b"}")
    assert response.status_code == 413


def test_without_a_secret_webhooks_are_404(registry, servers, tmp_path) -> None:
    modelsync = start_modelsync(
        servers, registry.client.tracking_uri, registry.name, tmp_path / "cache", webhooks=False
    )
    response = deliver(modelsync, event(registry.name))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "webhooks_disabled"


def test_the_webhook_is_registered_in_mlflow_and_its_deliveries_are_accepted(
    registry, servers, tmp_path
) -> None:
    registry.promote(registry.register(good_package(tmp_path / "v1", registry.name)))
    modelsync = start_modelsync(
        servers, registry.client.tracking_uri, registry.name, tmp_path / "cache"
    )
    wait_until(
        lambda: httpx.get(f"{modelsync.url}/readyz").json()["webhook"]["state"] == "registered",
        what="webhook registered",
    )
    hooks = registry.client.list_webhooks(max_results=1000)
    mine = [h for h in hooks if h.name == f"model-sync-{registry.name}"]
    assert [h.url for h in mine] == [f"{modelsync.url}/v1/webhooks/mlflow"]

    registry.promote(registry.register(good_package(tmp_path / "v2", registry.name, CONFUSED)))
    wait_until(lambda: published_version(modelsync, registry.name) == "2", timeout=20)
    assert history(modelsync, registry.name)[0]["trigger"] == "webhook"
