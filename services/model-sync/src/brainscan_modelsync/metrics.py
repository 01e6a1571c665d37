"""Prometheus metrics of model-sync, on a registry of its own (one per app)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _SyncLagCollector(Collector):
    """Seconds since each model's last successful registry check, computed at scrape time."""

    def __init__(self, last_success: Callable[[], dict[str, float]]) -> None:
        self._last_success = last_success

    def collect(self) -> Iterable[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "brainscan_modelsync_sync_lag_seconds",
            "Seconds since the registry was last read successfully for a model (since start if"
            " never).",
            labels=["model"],
        )
        now = time.time()
        for model, last in self._last_success().items():
            lag.add_metric([model], max(0.0, now - last))
        yield lag


class ModelSyncMetrics:
    """Every metric model-sync exports; docs/model-sync.md says what each means."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sync_runs = Counter(
            "brainscan_modelsync_sync_runs",
            "Registry checks by model, trigger (startup, poll, webhook, manual) and outcome"
            " (published, rolled_back, unchanged, refused, already_refused, alias_missing,"
            " registry_unavailable).",
            ["model", "trigger", "outcome"],
            registry=r,
        )
        self.refused = Counter(
            "brainscan_modelsync_versions_refused",
            "Versions that failed verification and were not published, by model and alias"
            " (production, or the challenger in shadow).",
            ["model", "alias"],
            registry=r,
        )
        self.published = Counter(
            "brainscan_modelsync_versions_published",
            "Versions published (including rollbacks and restores from the cache), by model, alias"
            " and outcome.",
            ["model", "alias", "outcome"],
            registry=r,
        )
        self.published_info = Info(
            "brainscan_modelsync_published_model",
            "The version published for each model and alias (version, sha256); a challenger's is"
            " removed when it is withdrawn.",
            ["model", "alias"],
            registry=r,
        )
        self.degraded = Gauge(
            "brainscan_modelsync_degraded",
            "1 when the registry's choice is not what is served (alias missing, version refused).",
            ["model"],
            registry=r,
        )
        self.registry_up = Gauge(
            "brainscan_modelsync_registry_up",
            "1 if the last request to MLflow succeeded, 0 if it failed.",
            registry=r,
        )
        self.last_success = Gauge(
            "brainscan_modelsync_last_success_timestamp_seconds",
            "Unix time of the last successful registry check, by model.",
            ["model"],
            registry=r,
        )
        self.webhooks = Counter(
            "brainscan_modelsync_webhooks",
            "Webhook deliveries by outcome (accepted, ignored, rejected).",
            ["outcome"],
            registry=r,
        )
        self.webhook_registered = Gauge(
            "brainscan_modelsync_webhook_registered",
            "1 once the webhook is registered in MLflow.",
            registry=r,
        )
        self.artifact_requests = Counter(
            "brainscan_modelsync_artifact_requests",
            "Artifact requests from replicas by model and outcome (sent, not_modified).",
            ["model", "outcome"],
            registry=r,
        )
        self.long_polls_waiting = Gauge(
            "brainscan_modelsync_long_polls_waiting",
            "Long polls waiting for a change right now.",
            registry=r,
        )
        self.cache_versions = Gauge(
            "brainscan_modelsync_cache_versions",
            "Verified versions in the on-disk cache, by model.",
            ["model"],
            registry=r,
        )

    def watch_sync_lag(self, last_success: Callable[[], dict[str, float]]) -> None:
        self.registry.register(_SyncLagCollector(last_success))
