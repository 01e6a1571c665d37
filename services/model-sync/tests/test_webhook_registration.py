"""Webhook registration: its state from the settings, retries while MLflow is down, and the
fallback to polling when the server has no webhooks (against a registry stand-in; the real MLflow
registration is in tests/api/routes/test_webhooks.py and test_mlflow_registry.py)."""

from __future__ import annotations

import asyncio

import pytest
from brainscan_modelsync.metrics import ModelSyncMetrics
from brainscan_modelsync.mlflow_registry import RegistryUnavailable, WebhookUnsupported
from brainscan_modelsync.webhook_registration import WebhookRegistration, WebhookState
from modelsync_servers import SECRET, modelsync_settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class StandInRegistry:
    """Answers ``ensure_webhook`` with the given exceptions first, then an ID."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls: list[tuple[str, str, str]] = []

    def ensure_webhook(self, name: str, url: str, secret: str) -> str:
        self.calls.append((name, url, secret))
        if self.failures:
            raise self.failures.pop(0)
        return "wh-1"


def registration(tmp_path, registry: StandInRegistry, **overrides: object) -> WebhookRegistration:
    settings = modelsync_settings("http://127.0.0.1:1", "brainscan-test", tmp_path, **overrides)
    return WebhookRegistration(settings, registry, ModelSyncMetrics())  # type: ignore[arg-type]


async def test_the_state_follows_the_settings(tmp_path) -> None:
    assert registration(tmp_path, StandInRegistry()).status.state == WebhookState.DISABLED
    manual = registration(tmp_path, StandInRegistry(), webhook_secret=SECRET)
    assert manual.status.state == WebhookState.MANUAL
    manual.start()  # no URL: nothing to register
    await manual.stop()
    pending = registration(
        tmp_path,
        StandInRegistry(),
        webhook_secret=SECRET,
        webhook_url="http://h/v1/webhooks/mlflow",
    )
    assert pending.status.state == WebhookState.PENDING


async def test_registration_retries_while_mlflow_is_down(tmp_path) -> None:
    registry = StandInRegistry(RegistryUnavailable("MLflow unreachable"))
    hook = registration(
        tmp_path,
        registry,
        webhook_secret=SECRET,
        webhook_url="http://h/v1/webhooks/mlflow",
        retry_initial_delay=0.01,
    )
    hook.start()
    try:
        for _ in range(500):
            if hook.status.state == WebhookState.REGISTERED:
                break
            await asyncio.sleep(0.01)
    finally:
        await hook.stop()
    assert (hook.status.state, hook.status.webhook_id) == (WebhookState.REGISTERED, "wh-1")
    assert len(registry.calls) == 2 and registry.calls[0][2] == SECRET
    assert hook.metrics.registry.get_sample_value("brainscan_modelsync_webhook_registered") == 1


async def test_a_server_without_webhooks_means_polling_only(tmp_path) -> None:
    registry = StandInRegistry(WebhookUnsupported("no webhooks on this server"))
    hook = registration(
        tmp_path, registry, webhook_secret=SECRET, webhook_url="http://h/v1/webhooks/mlflow"
    )
    hook.start()
    try:
        for _ in range(500):
            if hook.status.state != WebhookState.PENDING:
                break
            await asyncio.sleep(0.01)
    finally:
        await hook.stop()
    assert hook.status.state == WebhookState.UNSUPPORTED
    assert "polling only" in hook.status.detail and len(registry.calls) == 1
