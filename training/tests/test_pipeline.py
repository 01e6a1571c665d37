"""`dvc repro` of the whole pipeline on a tiny profile, for real: DVC, MLflow, TensorFlow, ONNX."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from brainscan_testsupport.pipeline import dvc_project, pipeline_env, run, tiny_params

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_server):
    """A git + DVC checkout of the pipeline with a tiny profile and its own DVC remote."""
    params = tiny_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    env = pipeline_env(MLFLOW_TRACKING_URI=mlflow_server.url)
    root = tmp_path_factory.mktemp("project")
    dvc_project(REPO, root, yaml.safe_dump(params, sort_keys=False), env)
    return root, env


@pytest.fixture(scope="module")
def reproduced(project):
    root, env = project
    output = run(["dvc", "repro"], root, env)
    return root, env, output


def test_repro_registers_a_production_model(reproduced):
    root, _, _ = reproduced
    decision = json.loads((root / "reports/registration.json").read_text())
    assert decision["version"] == "1" and decision["alias"] == "production"
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert 0.0 <= metrics["macro_f1"] <= 1.0 and metrics["test_images"] == 32
    assert json.loads((root / "reports/parity.json").read_text())["passed"] is True
    manifest = json.loads((root / "artifacts/export/manifest.json").read_text())
    assert manifest["lineage"]["data_hash"]  # dvc.lock's hash of data/raw
    assert manifest["lineage"]["params"]["profile"] == "tiny"
    for split, count in (("train", 80), ("val", 16), ("test", 32)):
        rows = (root / f"data/prepared/{split}.csv").read_text().splitlines()
        assert len(rows) - 1 == count


def test_the_registered_package_carries_its_guard_and_its_figures(reproduced):
    """The guard stage wrote the served package: the export's graph plus the guard."""
    from brainscan_manifest.verify import load_package, verify_package

    root, _, _ = reproduced
    onnx_path, manifest = load_package(root / "artifacts/package")
    verify_package(onnx_path, manifest)
    assert [cue.name for cue in manifest.ood.cue_names] == [
        "pixels", "texture", "features", "confidence", "appearance",
    ]  # fmt: skip
    assert manifest.ood.calibration_images == 16  # the validation split
    figures = json.loads((root / "reports/ood.json").read_text())
    assert figures["test_images"] == 32 and figures["corpus_items"] >= 90
    assert manifest.ood.metrics["corpus_detection_rate"] == figures["corpus_detection_rate"]
    assert set(figures["missed"]) <= {
        row.split(",")[0]
        for row in (root / "reports/plots/ood_corpus.csv").read_text().splitlines()[1:]
    }
    plain = json.loads((root / "artifacts/export/manifest.json").read_text())
    assert plain["ood"] is None and plain["onnx_sha256"] != manifest.onnx_sha256


def test_mlflow_run_holds_params_epochs_metrics_and_plots(reproduced, mlflow_server):
    from mlflow import MlflowClient

    root, _, _ = reproduced
    client = MlflowClient(mlflow_server.url)
    run_id = json.loads((root / "artifacts/train/run.json").read_text())["run_id"]
    run = client.get_run(run_id)
    assert run.data.params["train.epochs"] == "1"
    assert "test.macro_f1" in run.data.metrics
    assert len(client.get_metric_history(run_id, "loss")) == 2  # one epoch per phase
    artifacts = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert "evaluation/confusion_matrix.png" in artifacts
    assert {a.path for a in client.list_artifacts(run_id, "model_package")} == {
        "model_package/model.onnx", "model_package/manifest.json",
    }  # fmt: skip
    assert "ood.corpus_detection_rate" in run.data.metrics
    assert "ood.test_false_alarm_rate" in run.data.metrics
    assert "evaluation/ood_scores.png" in artifacts
    assert run.inputs.dataset_inputs  # the data set summary is logged
    assert run.data.metrics["data.images"] == 128  # the synthetic slices hold no duplicates
    assert run.data.metrics["data.duplicates.groups"] == 0
    assert run.data.params["data.duplicates"] == "drop"


def test_second_repro_does_nothing(reproduced):
    root, env, _ = reproduced
    status = run(["dvc", "status"], root, env)
    assert "up to date" in status
    output = run(["dvc", "repro"], root, env)
    assert "didn't change, skipping" in output
    assert "Running stage" not in output


def test_push_and_pull_through_the_remote(reproduced):
    root, env, _ = reproduced
    run(["dvc", "push"], root, env)
    shutil.rmtree(root / "data/raw")
    (root / "artifacts/train/model.keras").unlink()
    shutil.rmtree(root / ".dvc/cache")
    run(["dvc", "pull"], root, env)
    assert len(list((root / "data/raw/Training/glioma").iterdir())) == 24
    assert (root / "artifacts/train/model.keras").stat().st_size > 0
    assert "up to date" in run(["dvc", "status"], root, env)


def test_retrain_warm_starts_from_production(reproduced, mlflow_server):
    """warm_start: production loads the registered Keras weights and says so in the lineage."""
    root, env, _ = reproduced
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["warm_start"] = "production"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output = run(["dvc", "repro"], root, env)
    assert "Running stage 'train'" in output and "Running stage 'data'" not in output
    manifest = json.loads((root / "artifacts/export/manifest.json").read_text())
    assert manifest["lineage"]["warm_start_from"].endswith("@1")
    decision = json.loads((root / "reports/registration.json").read_text())
    assert decision["version"] == "2"
    assert decision["champion_version"] == "1"  # judged against v1 on the same test split
