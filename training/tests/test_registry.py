"""Registration and every branch of the promotion gate, against a real MLflow server."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from brainscan_manifest.verify import load_package
from brainscan_testsupport.onnx_models import CLASSES, CONFUSED, CONSTANT, PERFECT
from brainscan_testsupport.packages import quadrant_package
from brainscan_training.registry import (
    CHALLENGER,
    PRODUCTION,
    Registry,
    RegistryError,
    split_scorer,
)
from mlflow import MlflowClient
from training_models import write_test_split


@pytest.fixture
def registry(tracking, model_name):
    return Registry(MlflowClient(tracking), model_name)


@pytest.fixture
def scorer(tmp_path):
    test_csv, raw = write_test_split(tmp_path / "split")
    return split_scorer(test_csv, raw, CLASSES)


def register(registry: Registry, directory: Path, mapping) -> tuple[str, tuple]:
    quadrant_package(directory, mapping)
    mlflow.set_experiment("registry-tests")
    with mlflow.start_run() as run:
        version = registry.register_package(directory, run.info.run_id, {"origin": "test"})
    return version, load_package(directory)


def test_registered_version_carries_manifest_tags(registry, tmp_path):
    version, (_, manifest) = register(registry, tmp_path / "v1", PERFECT)
    tags = registry.client.get_model_version(registry.model_name, version).tags
    assert tags["manifest.onnx_sha256"] == manifest.onnx_sha256
    assert tags["manifest.classes"] == '["glioma", "meningioma", "notumor", "pituitary"]'
    assert tags["origin"] == "test"


def test_first_version_is_promoted_when_there_is_no_champion(registry, scorer, tmp_path):
    version, candidate = register(registry, tmp_path / "v1", CONFUSED)
    decision = registry.decide(version, candidate, scorer, parity_passed=True)
    assert decision.promoted and decision.reason == "no production version yet"
    assert registry.alias_version(PRODUCTION) == version


def test_better_candidate_replaces_champion(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", CONFUSED)
    registry.decide(v1, first, scorer, parity_passed=True)
    v2, second = register(registry, tmp_path / "v2", PERFECT)
    decision = registry.decide(v2, second, scorer, parity_passed=True)
    assert decision.promoted
    assert decision.champion_version == v1
    assert decision.candidate_macro_f1 == pytest.approx(1.0)
    assert decision.champion_macro_f1 == pytest.approx(0.652, abs=0.01)
    assert registry.alias_version(PRODUCTION) == v2
    tags = registry.client.get_model_version(registry.model_name, v2).tags
    assert tags["promotion.decision"] == "promoted"


def test_worse_candidate_stays_challenger(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", PERFECT)
    registry.decide(v1, first, scorer, parity_passed=True)
    v2, second = register(registry, tmp_path / "v2", CONSTANT)
    decision = registry.decide(v2, second, scorer, parity_passed=True)
    assert not decision.promoted
    assert "<" in decision.reason
    assert registry.alias_version(PRODUCTION) == v1
    assert registry.alias_version(CHALLENGER) == v2
    tags = registry.client.get_model_version(registry.model_name, v2).tags
    assert tags["promotion.decision"] == "challenger"
    assert tags["promotion.reason"] == decision.reason


def test_equal_candidate_is_not_worse_and_is_promoted(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", PERFECT)
    registry.decide(v1, first, scorer, parity_passed=True)
    v2, second = register(registry, tmp_path / "v2", PERFECT)
    assert registry.decide(v2, second, scorer, parity_passed=True).promoted


def test_parity_failure_keeps_candidate_out_of_production(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", CONFUSED)
    registry.decide(v1, first, scorer, parity_passed=True)
    v2, second = register(registry, tmp_path / "v2", PERFECT)
    decision = registry.decide(v2, second, scorer, parity_passed=False)
    assert decision.alias == CHALLENGER and "parity" in decision.reason
    assert registry.alias_version(PRODUCTION) == v1


def test_rollback_moves_production_back(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", CONFUSED)
    registry.decide(v1, first, scorer, parity_passed=True)
    v2, second = register(registry, tmp_path / "v2", PERFECT)
    registry.decide(v2, second, scorer, parity_passed=True)
    decision = registry.set_production(v1, f"rollback to version {v1}")
    assert registry.alias_version(PRODUCTION) == v1
    assert decision.champion_version == v2


def test_rollback_to_a_missing_version_is_refused(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", PERFECT)
    registry.decide(v1, first, scorer, parity_passed=True)
    with pytest.raises(RegistryError, match="no version 99"):
        registry.set_production("99", "rollback")
    assert registry.alias_version(PRODUCTION) == v1


def test_tampered_version_cannot_be_promoted(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", PERFECT)
    registry.decide(v1, first, scorer, parity_passed=True)
    v2, _ = register(registry, tmp_path / "v2", CONFUSED)
    # The registry's recorded hash no longer matches the stored file.
    registry.client.set_model_version_tag(registry.model_name, v2, "manifest.onnx_sha256", "0" * 64)
    with pytest.raises(RegistryError, match="sha256 mismatch"):
        registry.set_production(v2, "manual")
    assert registry.alias_version(PRODUCTION) == v1


def test_scorer_refuses_a_model_with_other_classes(scorer, tmp_path):
    onnx_path, manifest = quadrant_package(
        tmp_path / "other", PERFECT, classes=["a", "b", "c", "d"]
    )
    with pytest.raises(RegistryError, match="differ from the test split"):
        scorer(onnx_path, manifest)


def test_version_that_failed_parity_needs_force(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", PERFECT)
    registry.decide(v1, first, scorer, parity_passed=True)
    v2, second = register(registry, tmp_path / "v2", PERFECT)
    registry.client.set_model_version_tag(registry.model_name, v2, "parity.passed", "false")
    registry.decide(v2, second, scorer, parity_passed=False)
    with pytest.raises(RegistryError, match="failed the ONNX parity check"):
        registry.set_production(v2, "manual")
    assert registry.alias_version(PRODUCTION) == v1
    assert registry.set_production(v2, "manual", force=True).promoted


def test_min_improvement_is_required(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", PERFECT)
    registry.decide(v1, first, scorer, parity_passed=True)
    v2, second = register(registry, tmp_path / "v2", PERFECT)
    decision = registry.decide(v2, second, scorer, parity_passed=True, min_improvement=0.01)
    assert not decision.promoted and "(+0.01)" in decision.reason


def test_damaged_champion_is_replaced(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", PERFECT)
    registry.decide(v1, first, scorer, parity_passed=True)
    registry.client.set_model_version_tag(registry.model_name, v1, "manifest.onnx_sha256", "0" * 64)
    v2, second = register(registry, tmp_path / "v2", CONFUSED)
    decision = registry.decide(v2, second, scorer, parity_passed=True)
    assert decision.promoted and "cannot be scored" in decision.reason


def test_unreachable_champion_never_promotes_untested(registry, scorer, tmp_path, monkeypatch):
    from mlflow.exceptions import MlflowException

    v1, first = register(registry, tmp_path / "v1", CONFUSED)
    registry.decide(v1, first, scorer, parity_passed=True)
    v2, second = register(registry, tmp_path / "v2", PERFECT)

    def artifact_store_down(*_args, **_kwargs):
        raise MlflowException("artifact store unavailable")

    monkeypatch.setattr("mlflow.artifacts.download_artifacts", artifact_store_down)
    decision = registry.decide(v2, second, scorer, parity_passed=True)
    assert decision.alias == CHALLENGER and "not promoted" in decision.reason
    assert registry.alias_version(PRODUCTION) == v1


def test_with_a_shadow_gate_a_better_candidate_waits_in_shadow(registry, scorer, tmp_path):
    v1, first = register(registry, tmp_path / "v1", CONFUSED)
    assert registry.decide(v1, first, scorer, parity_passed=True).promoted  # no champion yet
    v2, second = register(registry, tmp_path / "v2", PERFECT)
    gate = "at least 500 predictions compared in shadow at agreement >= 0.9"
    decision = registry.decide(v2, second, scorer, parity_passed=True, hold_for_shadow=gate)
    assert not decision.promoted and decision.candidate_macro_f1 > decision.champion_macro_f1
    assert f"in shadow until {gate}" in decision.reason
    assert registry.alias_version(CHALLENGER) == v2 and registry.alias_version(PRODUCTION) == v1
