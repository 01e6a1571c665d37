"""Registering model-sync's webhook in MLflow: a task of its own, retried while MLflow is down.

Whether it succeeds changes nothing but latency: without a webhook the registry is still polled.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from enum import StrEnum

from brainscan_servicekit import get_logger

from .metrics import ModelSyncMetrics
from .mlflow_registry import MlflowRegistry, RegistryUnavailable, WebhookUnsupported
from .settings import ModelSyncSettings

_log = get_logger(__name__)


class WebhookState(StrEnum):
    DISABLED = "disabled"
    """No secret: the webhook endpoint is off."""
    MANUAL = "manual"
    """Deliveries are accepted; registering the webhook is left to someone else (no URL set)."""
    PENDING = "pending"
    """Not registered yet (MLflow unreachable so far)."""
    REGISTERED = "registered"
    UNSUPPORTED = "unsupported"
    """The server has no webhooks or refused ours: polling only."""


@dataclass(frozen=True)
class WebhookStatus:
    state: WebhookState
    detail: str = ""
    webhook_id: str | None = None


class WebhookRegistration:
    """The webhook's state (for readiness) and the task that registers it when a URL is set."""

    def __init__(
        self, settings: ModelSyncSettings, registry: MlflowRegistry, metrics: ModelSyncMetrics
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        if settings.webhook_url:
            self.status = WebhookStatus(WebhookState.PENDING, "not registered yet")
        elif settings.webhooks_enabled:
            self.status = WebhookStatus(
                WebhookState.MANUAL, "accepted; MODELSYNC_WEBHOOK_URL unset"
            )
        else:
            self.status = WebhookStatus(WebhookState.DISABLED, "MODELSYNC_WEBHOOK_SECRET unset")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.settings.webhook_url:
            self._task = asyncio.get_running_loop().create_task(self._register(), name="webhook")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _register(self) -> None:
        """Register (or update) the webhook in MLflow, retrying while MLflow is unreachable."""
        settings = self.settings
        assert settings.webhook_url is not None and settings.webhook_secret is not None
        failures = 0
        while True:
            try:
                webhook_id = await asyncio.to_thread(
                    self.registry.ensure_webhook,
                    settings.webhook_name,
                    settings.webhook_url,
                    settings.webhook_secret.get_secret_value(),
                )
            except WebhookUnsupported as exc:
                self.status = WebhookStatus(
                    WebhookState.UNSUPPORTED, f"{exc}; following by polling only"
                )
                _log.warning("webhook not registered; polling only", **{"error.message": str(exc)})
                return
            except RegistryUnavailable as exc:
                failures += 1
                self.status = WebhookStatus(WebhookState.PENDING, str(exc))
                await asyncio.sleep(settings.retry_delay(failures))
                continue
            self.status = WebhookStatus(
                WebhookState.REGISTERED,
                f"{settings.webhook_name} -> {settings.webhook_url}",
                webhook_id,
            )
            self.metrics.webhook_registered.set(1)
            _log.info(
                "webhook registered",
                **{"brainscan.webhook.id": webhook_id, "url.full": settings.webhook_url},
            )
            return
