"""Whether MLflow answers: reachability, the last error, and when each model was last read.

The syncer reports every request to the registry here; readiness and the metrics read it. The
warning that MLflow is unavailable is logged once per distinct error, not on every retry.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from brainscan_servicekit import get_logger

from .history import utc_now
from .metrics import ModelSyncMetrics

_log = get_logger(__name__)


class RegistryHealth:
    """MLflow's reachability as model-sync last saw it, and each model's last successful read."""

    def __init__(self, models: Iterable[str], metrics: ModelSyncMetrics) -> None:
        self.metrics = metrics
        self.reachable: bool | None = None
        """None until the first request to MLflow has been answered or failed."""
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self.started_at = time.time()
        self.last_success: dict[str, float | None] = dict.fromkeys(models)
        """Unix time each model's alias was last read (None: not since start)."""
        metrics.watch_sync_lag(
            lambda: {m: t or self.started_at for m, t in self.last_success.items()}
        )

    def succeeded(self, name: str) -> None:
        """The registry answered a request about ``name``."""
        if self.reachable is False:
            _log.info("registry reachable again", **{"model.name": name})
        self.reachable = True
        now = time.time()
        self.last_success[name] = now
        self.metrics.registry_up.set(1)
        self.metrics.last_success.labels(name).set(now)

    def failed(self, name: str, reason: str, serving_version: str | None) -> None:
        """A request about ``name`` failed with ``reason``; ``serving_version`` is still served."""
        if self.reachable is not False or self.last_error != reason:
            _log.warning(
                "registry unavailable; retrying with backoff",
                **{
                    "error.message": reason,
                    "model.name": name,
                    "model.serving_version": serving_version,
                },
            )
        self.reachable = False
        self.last_error = reason
        self.last_error_at = utc_now()
        self.metrics.registry_up.set(0)

    def sync_lag(self, name: str, now: float) -> float:
        """Seconds since ``name`` was last read from the registry (since start if never)."""
        last = self.last_success[name]
        return now - (last if last is not None else self.started_at)
