"""The `brainscan-train` command: registry actions and the errors a user sees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from brainscan_localstack.mlflow_server import free_port
from brainscan_testsupport.onnx_models import CONFUSED, PERFECT
from brainscan_testsupport.packages import quadrant_package
from brainscan_training.cli import main
from training_models import write_test_split

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "params.yaml"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory holding data/raw and data/prepared/test.csv, as after `prepare`."""
    write_test_split(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(capsys, *args: str, model: str | None = None) -> tuple[int, dict | None, str]:
    code = main(["--params", str(PARAMS), *(["--model", model] if model else []), *args])
    captured = capsys.readouterr()
    out = captured.out.strip().splitlines()
    return code, (json.loads(out[-1]) if out and code == 0 else None), captured.err


def test_bring_your_own_model_is_a_challenger_without_promote(
    tracking, model_name, workdir, capsys
):
    onnx_path, _ = quadrant_package(workdir / "byom", PERFECT)
    code, decision, _ = run_cli(
        capsys, "register-external", "--onnx", str(onnx_path),
        "--manifest", str(workdir / "byom/manifest.json"), model=model_name,
    )  # fmt: skip
    assert code == 0
    assert decision["alias"] == "challenger"
    code, status, _ = run_cli(capsys, "status", model=model_name)
    assert code == 0
    assert status == {"model": model_name, "production": None, "challenger": "1"}


def test_bring_your_own_model_goes_through_the_gate(tracking, model_name, workdir, capsys):
    for mapping, expected in ((CONFUSED, "production"), (PERFECT, "production")):
        onnx_path, _ = quadrant_package(workdir / "byom", mapping)
        code, decision, _ = run_cli(
            capsys, "register-external", "--onnx", str(onnx_path),
            "--manifest", str(workdir / "byom/manifest.json"), "--promote", model=model_name,
        )  # fmt: skip
        assert code == 0 and decision["alias"] == expected
    assert decision["champion_version"] == "1"

    code, decision, _ = run_cli(capsys, "rollback", "--to", "1", model=model_name)
    assert code == 0 and decision["version"] == "1" and decision["alias"] == "production"


def test_external_model_failing_its_checks_is_refused(tracking, model_name, workdir, capsys):
    onnx_path, _ = quadrant_package(workdir / "byom", PERFECT)
    onnx_path.write_bytes(onnx_path.read_bytes()[:100])  # truncated after the manifest was made
    code, _, err = run_cli(
        capsys, "register-external", "--onnx", str(onnx_path),
        "--manifest", str(workdir / "byom/manifest.json"), model=model_name,
    )  # fmt: skip
    assert code == 2
    assert "sha256 mismatch" in err
    assert "Traceback" not in err


def test_unreachable_mlflow_gives_one_clear_line(monkeypatch, workdir, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    monkeypatch.setattr("brainscan_training.tracking.time.sleep", lambda _s: None)
    code, _, err = run_cli(capsys, "status")
    assert code == 2
    assert f"MLflow tracking server {dead} is not reachable after 5 attempts" in err
    assert "make mlflow" in err


def test_unreachable_mlflow_fails_a_stage_within_bounded_time(tmp_path):
    """The real process, real retries with backoff: it gives up (a hang would hit the timeout)."""
    env = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "brainscan_training.cli", "--params", str(PARAMS), "status"],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "is not reachable after 5 attempts" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_params_file_is_reported(tmp_path, capsys):
    bad = tmp_path / "params.yaml"
    bad.write_text(PARAMS.read_text().replace("profile: quick", "profile: tiny"))
    code = main(["--params", str(bad), "status"])
    assert code == 2
    assert "profile 'tiny' not in profiles" in capsys.readouterr().err


def test_promote_moves_production_and_refuses_a_missing_version(
    tracking, model_name, workdir, capsys
):
    for mapping in (PERFECT, CONFUSED):
        onnx_path, _ = quadrant_package(workdir / "byom", mapping)
        run_cli(
            capsys, "register-external", "--onnx", str(onnx_path),
            "--manifest", str(workdir / "byom/manifest.json"), model=model_name,
        )  # fmt: skip
    code, decision, _ = run_cli(capsys, "promote", "--version", "2", model=model_name)
    assert code == 0 and decision["version"] == "2" and decision["reason"] == "manual promotion"
    code, _, err = run_cli(capsys, "promote", "--version", "7", model=model_name)
    assert code == 2 and f"{model_name} has no version 7" in err
