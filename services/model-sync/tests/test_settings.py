"""Settings: MODELSYNC_* variables, every field documented, unsafe combinations refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from brainscan_modelsync.settings import ModelSyncSettings
from pydantic import ValidationError


def test_reads_the_modelsync_prefix(monkeypatch) -> None:
    monkeypatch.setenv("MODELSYNC_MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("MODELSYNC_MODELS", "brainscan-mobilenetv2, other-model")
    monkeypatch.setenv("MODELSYNC_POLL_INTERVAL", "5")
    monkeypatch.setenv("MODELSYNC_CACHE_DIR", "/var/cache/model-sync")
    monkeypatch.setenv("MODELSYNC_WEBHOOK_SECRET", "s" * 32)
    monkeypatch.setenv("MODELSYNC_WEBHOOK_URL", "http://model-sync:8002/v1/webhooks/mlflow")
    settings = ModelSyncSettings()
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"
    assert settings.models == ["brainscan-mobilenetv2", "other-model"]
    assert settings.poll_interval == 5.0
    assert settings.cache_dir == Path("/var/cache/model-sync")
    assert settings.webhooks_enabled
    assert "s" * 32 not in repr(settings)  # the secret never shows in logs or tracebacks


def test_models_may_be_a_json_list(monkeypatch) -> None:
    monkeypatch.setenv("MODELSYNC_MODELS", '["a", "b"]')
    assert ModelSyncSettings().models == ["a", "b"]


def test_defaults_follow_production_on_port_8002_with_webhooks_off() -> None:
    settings = ModelSyncSettings()
    assert settings.models == ["brainscan-mobilenetv2"]
    assert settings.alias == "production"
    assert settings.port == 8002
    assert not settings.webhooks_enabled


def test_every_field_is_documented() -> None:
    for name, field in ModelSyncSettings.model_fields.items():
        assert field.description, f"{name} has no docstring"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"models": ""}, "at least one"),
        ({"models": "a,a"}, "listed twice"),
        ({"webhook_secret": "short"}, "at least 16"),
        ({"webhook_url": "http://x/hook"}, "WEBHOOK_SECRET is not"),
        ({"webhook_url": "ftp://x/hook", "webhook_secret": "s" * 20}, "http"),
        ({"poll_interval": 0}, "greater than 0"),
        ({"cache_max_versions": 0}, "greater than or equal to 1"),
        ({"log_level": "LOUD"}, "unknown log level"),
    ],
)
def test_bad_values_are_refused(values, message) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelSyncSettings(**values)
