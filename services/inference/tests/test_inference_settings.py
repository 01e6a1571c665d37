"""Settings: INFERENCE_* environment variables, every field documented, bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from brainscan_inference.settings import InferenceSettings
from brainscan_servicekit import usable_cpus
from pydantic import ValidationError


def test_reads_the_inference_prefix(monkeypatch) -> None:
    monkeypatch.setenv("INFERENCE_MODEL_DIR", "/srv/models")
    monkeypatch.setenv("INFERENCE_MAX_BATCH_SIZE", "16")
    monkeypatch.setenv("INFERENCE_MAX_QUEUE_DELAY_MS", "2.5")
    monkeypatch.setenv("INFERENCE_GRAPH_OPTIMIZATION_LEVEL", "basic")
    monkeypatch.setenv("INFERENCE_MODEL_NAME", "")
    settings = InferenceSettings()
    assert settings.model_dir == Path("/srv/models")
    assert settings.max_batch_size == 16
    assert settings.max_queue_delay == pytest.approx(0.0025)
    assert settings.graph_optimization_level == "basic"
    assert settings.model_name is None


def test_defaults_add_no_batching_delay_and_listen_on_8001() -> None:
    settings = InferenceSettings()
    assert settings.max_queue_delay_ms == 0
    assert settings.port == 8001


def test_onnxruntime_defaults_are_one_sequential_thread_that_does_not_spin(monkeypatch) -> None:
    settings = InferenceSettings()
    assert (settings.intra_op_threads, settings.inter_op_threads) == (1, 1)
    assert settings.thread_spinning is False
    monkeypatch.setenv("INFERENCE_INTRA_OP_THREADS", "0")  # 0: one per usable CPU
    monkeypatch.setenv("INFERENCE_THREAD_SPINNING", "true")
    settings = InferenceSettings()
    assert settings.intra_op_threads == 0 and settings.thread_spinning is True


def test_model_workers_default_to_one_per_usable_cpu(monkeypatch) -> None:
    assert InferenceSettings().model_workers == 0
    assert InferenceSettings().batch_workers == usable_cpus()
    monkeypatch.setenv("INFERENCE_MODEL_WORKERS", "3")
    assert InferenceSettings().batch_workers == 3


def test_the_repository_api_is_off_by_default_and_needs_a_token_when_on() -> None:
    assert InferenceSettings().repository_api is False
    with pytest.raises(ValidationError, match="INFERENCE_REPOSITORY_TOKEN"):
        InferenceSettings(repository_api=True)
    with pytest.raises(ValidationError, match="at least 16"):
        InferenceSettings(repository_api=True, repository_token="short")
    settings = InferenceSettings(repository_api=True, repository_token="s" * 16)
    assert "s" * 16 not in repr(settings)  # a secret: never printed


def test_every_field_is_documented() -> None:
    for name, field in InferenceSettings.model_fields.items():
        assert field.description, f"{name} has no docstring"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_batch_size", 0),
        ("queue_capacity", 0),
        ("model_workers", -1),
        ("graph_optimization_level", "max"),
        ("log_level", "LOUD"),
        ("model_source", "s3"),
        ("port", 70000),
    ],
)
def test_bad_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        InferenceSettings(**{field: value})
