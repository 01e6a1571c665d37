"""The training image runs the real pipeline: `dvc repro` on a tiny profile inside the container,
against the containerised MLflow, ends with a registered and promoted model version."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from brainscan_testsupport import pipeline

REPO = Path(__file__).resolve().parents[2]

MODEL = "brainscan-mobilenetv2"


@pytest.fixture(scope="module")
def tiny_params(tmp_path_factory):
    params = pipeline.tiny_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    path = tmp_path_factory.mktemp("training") / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    path.chmod(0o644)
    return path


def test_training_job_registers_and_promotes_a_model(registry_stack, tiny_params):
    registry_stack.settings["TRAINING_PARAMS"] = str(tiny_params)
    registry_stack.compose(
        "--profile", "training", "run", "--rm", "--no-deps", "training", timeout=900
    )
    mlflow = registry_stack.url("mlflow")
    answer = httpx.get(
        f"{mlflow}/api/2.0/mlflow/registered-models/alias",
        params={"name": MODEL, "alias": "production"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    version = answer.json()["model_version"]
    assert version["tags"]  # the manifest travels as version tags
    tags = {tag["key"]: tag["value"] for tag in version["tags"]}
    assert tags["promotion.decision"] == "promoted"
