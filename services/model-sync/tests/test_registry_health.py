"""Registry health: reachability, the last error (warned once per distinct error), sync lag."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from brainscan_modelsync.metrics import ModelSyncMetrics
from brainscan_modelsync.registry_health import RegistryHealth
from structlog.testing import capture_logs

NAME = "brainscan-test"


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    """Every event at every level (an app made by another test may have set WARNING)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with capture_logs() as captured:
            yield captured
    finally:
        structlog.configure(**saved)


def test_unknown_until_the_registry_answers_or_fails() -> None:
    health = RegistryHealth([NAME], ModelSyncMetrics())
    assert health.reachable is None and health.last_success[NAME] is None
    assert 0 <= health.sync_lag(NAME, health.started_at + 5) == 5


def test_a_failure_is_warned_once_per_distinct_error_and_recovery_logged(logs) -> None:
    metrics = ModelSyncMetrics()
    health = RegistryHealth([NAME], metrics)
    health.failed(NAME, "MLflow unreachable: refused", "3")
    health.failed(NAME, "MLflow unreachable: refused", "3")
    health.failed(NAME, "MLflow unreachable: timed out", "3")
    assert health.reachable is False and health.last_error.endswith("timed out")
    assert health.last_error_at is not None
    assert metrics.registry.get_sample_value("brainscan_modelsync_registry_up") == 0
    health.succeeded(NAME)
    warnings = [e for e in logs if e["event"] == "registry unavailable; retrying with backoff"]
    assert [w["error.message"] for w in warnings] == [
        "MLflow unreachable: refused",
        "MLflow unreachable: timed out",
    ]
    assert warnings[0]["model.serving_version"] == "3"
    assert [e["event"] for e in logs][-1] == "registry reachable again"
    assert health.reachable is True
    assert metrics.registry.get_sample_value("brainscan_modelsync_registry_up") == 1
    last = health.last_success[NAME]
    assert last is not None and health.sync_lag(NAME, last + 2) == 2
    assert (
        metrics.registry.get_sample_value(
            "brainscan_modelsync_last_success_timestamp_seconds", {"model": NAME}
        )
        == last
    )


def test_the_sync_lag_metric_counts_from_start_until_the_first_success() -> None:
    metrics = ModelSyncMetrics()
    RegistryHealth([NAME], metrics)
    lag = metrics.registry.get_sample_value("brainscan_modelsync_sync_lag_seconds", {"model": NAME})
    assert lag is not None and 0 <= lag < 5
