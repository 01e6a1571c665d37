"""The feedback loop end to end, with real processes: predict through a real gateway and real
inference, give feedback, restart the gateway (the records survive), `brainscan-train feedback
import` into a data set, then (slow) `dvc repro` of the tiny profile on that data set: the new
version's lineage names the feedback batch."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from brainscan_localstack.processes import ManagedProcess, free_port
from brainscan_synthetic_mri.synthetic import generate_dataset, render_example
from brainscan_testsupport.packages import tiny_package
from brainscan_testsupport.pipeline import dvc_project, pipeline_env, run, tiny_params
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODEL = "tiny-brainscan"
CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


def slice_png(class_name: str, seed: int) -> bytes:
    """A synthetic slice the data set does not hold (other seeds than generate_dataset's)."""
    pixels = render_example(class_name, np.random.default_rng(seed), 64).image
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def gateway_process(state: Path, port: int, inference_url: str) -> ManagedProcess:
    return ManagedProcess(
        name="gateway",
        command=[str(BIN / "brainscan-gateway")],
        health_url=f"http://127.0.0.1:{port}/readyz",
        log_path=state / "logs/gateway.log",
        env={
            "GATEWAY_INFERENCE_URL": inference_url,
            "GATEWAY_MODEL_NAME": MODEL,
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "GATEWAY_FEEDBACK_DIR": str(state / "feedback"),
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        },
    )


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """Feedback given through real servers, the gateway restarted, and the import run."""
    state = tmp_path_factory.mktemp("loop")
    dataset = state / "dataset"
    generate_dataset(dataset, train_per_class=24, test_per_class=8, seed=7, image_size=64)
    tiny_package(state / "models/1", name=MODEL, size=16, features=6, seed=0)
    inference_port, gateway_port = free_port(), free_port()
    inference = ManagedProcess(
        name="inference",
        command=[str(BIN / "brainscan-inference")],
        health_url=f"http://127.0.0.1:{inference_port}/v2/health/ready",
        log_path=state / "logs/inference.log",
        env={
            "INFERENCE_MODEL_DIR": str(state / "models"),
            "INFERENCE_HOST": "127.0.0.1",
            "INFERENCE_PORT": str(inference_port),
            "INFERENCE_INTRA_OP_THREADS": "1",
        },
    )
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    given, answers = [], []
    with inference:
        with (
            gateway_process(state, gateway_port, inference.health_url.rsplit("/v2", 1)[0]),
            httpx.Client(base_url=gateway_url, timeout=30) as client,
        ):
            for index, truth in enumerate(CLASSES):
                answer = client.post(
                    "/api/v1/predictions",
                    files={"file": (f"{truth}.png", slice_png(truth, 9000 + index))},
                ).json()
                answers.append(answer)
                # The reviewer gives the true class: a confirmation or a correction.
                response = client.post(
                    f"/api/v1/predictions/{answer['request_id']}/feedback",
                    json={"label": truth, "comment": "checked against the report"},
                )
                assert response.status_code == 201, response.text
                given.append(response.json())
            unanswered = client.post(
                "/api/v1/predictions", files={"file": ("x.png", slice_png("glioma", 9100))}
            ).json()
            metrics = client.get("/metrics").text
        # A new gateway process on the same folder: what was stored is there, what was only
        # held in memory is not.
        with (
            gateway_process(state, gateway_port, inference.health_url.rsplit("/v2", 1)[0]),
            httpx.Client(base_url=gateway_url, timeout=30) as client,
        ):
            late = client.post(
                f"/api/v1/predictions/{unanswered['request_id']}/feedback",
                json={"label": "glioma"},
            )
    records = sorted((state / "feedback").glob("*.json"))
    imported = subprocess.run(
        [str(BIN / "brainscan-train"), "--params", str(REPO / "params.yaml"), "feedback",
         "import", "--from", str(state / "feedback"), "--into", str(dataset)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    return {
        "state": state,
        "dataset": dataset,
        "given": given,
        "answers": answers,
        "metrics": metrics,
        "late": late,
        "records": records,
        "summary": json.loads(imported.stdout),
    }


def test_feedback_survives_a_restart_and_memory_does_not(loop):
    assert len(loop["records"]) == 4
    stored = {json.loads(path.read_text())["request_id"] for path in loop["records"]}
    assert stored == {answer["request_id"] for answer in loop["answers"]}
    assert loop["late"].status_code == 404
    assert loop["late"].json()["error"]["code"] == "prediction_unknown"
    confirmations = sum(receipt["confirmation"] for receipt in loop["given"])
    counted = [line for line in loop["metrics"].splitlines()
               if line.startswith("gateway_feedback_total{")]  # fmt: skip
    assert sum(float(line.rsplit(" ", 1)[1]) for line in counted) == 4
    assert (
        sum(float(line.rsplit(" ", 1)[1]) for line in counted if 'outcome="confirmation"' in line)
        == confirmations
    )


def test_the_import_adds_every_reviewed_image_as_a_training_image(loop):
    summary = loop["summary"]
    assert summary["imported"] == 4 and summary["skipped"] == 0
    assert summary["counts"] == dict.fromkeys(CLASSES, 1)
    dataset = loop["dataset"]
    for receipt in loop["given"]:
        path = (
            dataset / "Training" / receipt["label"] / f"feedback-{receipt['image_sha256'][:12]}.png"
        )
        assert path.is_file()
    manifest = json.loads((dataset / f"feedback-batch-{summary['batch_id']}.json").read_text())
    assert manifest["batch_id"] == summary["batch_id"]
    assert {entry["model_version"] for entry in manifest["imported"]} == {"1"}


@pytest.mark.slow
def test_the_next_repro_trains_on_it_and_the_lineage_names_the_batch(loop, mlflow_server):
    from mlflow import MlflowClient

    params = tiny_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    params["data"].update(source="directory", source_dir=str(loop["dataset"]))
    # A model name of its own: the session's MLflow is shared with test_pipeline.py, which
    # expects to register the first version of the default name.
    params["model"]["name"] = f"feedback-loop-{uuid.uuid4().hex[:8]}"
    env = pipeline_env(MLFLOW_TRACKING_URI=mlflow_server.url)
    root = dvc_project(REPO, loop["state"] / "project", yaml.safe_dump(params), env)
    run(["dvc", "repro"], root, env)
    batch = loop["summary"]["batch_id"]

    report = json.loads((root / "data/prepared/data_report.json").read_text())
    assert report["feedback"] == {"batches": [{"batch_id": batch, "images": 4}], "images": 4}
    trained_on = [
        row.split(",")[0]
        for name in ("train", "val")
        for row in (root / f"data/prepared/{name}.csv").read_text().splitlines()[1:]
    ]
    assert len(trained_on) == 4 * 24 + 4
    assert sum("/feedback-" in path for path in trained_on) == 4

    manifest = json.loads((root / "artifacts/package/manifest.json").read_text())
    assert manifest["lineage"]["params"]["data.feedback_batches"] == [batch]
    decision = json.loads((root / "reports/registration.json").read_text())
    client = MlflowClient(mlflow_server.url)
    version = client.get_model_version(params["model"]["name"], decision["version"])
    assert version.tags["lineage.feedback_batches"] == batch
    run_tags = client.get_run(version.run_id).data.tags
    assert run_tags["data.feedback_batches"] == batch
