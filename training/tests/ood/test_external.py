"""`brainscan-train reference`: a model from elsewhere gets the same guard, and what a user
sees when the inputs do not allow one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from brainscan_manifest import Manifest
from brainscan_manifest.guard_fit import run_graph
from brainscan_manifest.verify import load_package, verify_package
from brainscan_testsupport.onnx_models import PERFECT, quadrant_image
from brainscan_testsupport.packages import quadrant_package
from brainscan_training.cli import main
from PIL import Image

PARAMS = Path(__file__).resolve().parents[3] / "params.yaml"


def write_images(folder: Path, count: int, seed: int = 0) -> Path:
    """Quadrant images (what the quadrant model is for) as PNG, in nested folders."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        path = folder / f"class_{index % 4}" / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(quadrant_image(index % 4, rng)).save(path)
    return folder


def reference(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(["--params", str(PARAMS), "reference", *args])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 and lines else None), captured.err


@pytest.fixture
def byom(tmp_path):
    onnx_path, _ = quadrant_package(tmp_path / "byom", PERFECT)
    return onnx_path, tmp_path / "byom" / "manifest.json"


def test_an_external_model_gets_a_guard_that_leaves_its_answers_alone(tmp_path, byom, capsys):
    onnx_path, manifest_path = byom
    images = write_images(tmp_path / "images", 200)
    code, summary, err = reference(
        capsys, "--onnx", str(onnx_path), "--manifest", str(manifest_path),
        "--images", str(images), "--out", str(tmp_path / "guarded"), "--no-appearance",
    )  # fmt: skip
    assert code == 0, err
    guarded_path, guarded = load_package(tmp_path / "guarded")
    verify_package(guarded_path, guarded)
    assert guarded.ood is not None and summary["threshold"] == guarded.ood.threshold
    assert summary["cues"] == ["pixels", "confidence"]
    assert guarded.ood.calibration_images == 50  # 25 % of 200
    assert summary["test_images"] == 30 and 0 <= summary["test_false_alarm_rate"] <= 0.2
    assert "register-external" in summary["next"]

    # Same probabilities as the original, and the guard flags what is not a quadrant image.
    rng = np.random.default_rng(5)
    probe = np.stack([quadrant_image(i % 4, rng) for i in range(8)])
    blank = np.full((1, *probe.shape[1:]), 255, np.uint8)
    before = run_graph(onnx.load(str(onnx_path)), "image", probe, ["probabilities"])
    after = run_graph(
        onnx.load(str(guarded_path)),
        "image",
        np.concatenate([probe, blank]),
        ["probabilities", "ood_score"],
    )
    np.testing.assert_array_equal(after["probabilities"][:8], before["probabilities"])
    assert after["ood_score"][-1] > guarded.ood.threshold


def test_too_few_images_is_a_one_line_error(tmp_path, byom, capsys):
    onnx_path, manifest_path = byom
    images = write_images(tmp_path / "few", 10)
    code, _, err = reference(
        capsys, "--onnx", str(onnx_path), "--manifest", str(manifest_path),
        "--images", str(images), "--out", str(tmp_path / "out"), "--no-appearance",
    )  # fmt: skip
    assert code == 2
    assert "holds 10 JPEG/PNG images; the reference needs at least 40" in err
    assert not (tmp_path / "out").exists()


def test_an_unknown_tap_names_the_missing_tensor(tmp_path, byom, capsys):
    onnx_path, manifest_path = byom
    images = write_images(tmp_path / "images", 60)
    code, _, err = reference(
        capsys, "--onnx", str(onnx_path), "--manifest", str(manifest_path),
        "--images", str(images), "--out", str(tmp_path / "out"), "--no-appearance",
        "--tap", "block_9_add",
    )  # fmt: skip
    assert code == 2 and "no tensors named ['block_9_add']" in err


def test_a_guarded_model_is_not_guarded_twice(tmp_path, byom, capsys):
    onnx_path, manifest_path = byom
    images = write_images(tmp_path / "images", 60)
    args = ["--images", str(images), "--no-appearance"]
    first = reference(
        capsys, "--onnx", str(onnx_path), "--manifest", str(manifest_path),
        "--out", str(tmp_path / "once"), *args,
    )  # fmt: skip
    assert first[0] == 0
    code, _, err = reference(
        capsys, "--onnx", str(tmp_path / "once/model.onnx"),
        "--manifest", str(tmp_path / "once/manifest.json"), "--out", str(tmp_path / "twice"),
        *args,
    )  # fmt: skip
    assert code == 2 and "already has an ood section" in err


def test_a_manifest_that_does_not_match_its_model_is_refused(tmp_path, byom, capsys):
    onnx_path, manifest_path = byom
    manifest = Manifest.load(manifest_path)
    manifest.model_copy(update={"onnx_sha256": "f" * 64}).save(manifest_path)
    images = write_images(tmp_path / "images", 60)
    code, _, err = reference(
        capsys, "--onnx", str(onnx_path), "--manifest", str(manifest_path),
        "--images", str(images), "--out", str(tmp_path / "out"), "--no-appearance",
    )  # fmt: skip
    assert code == 2 and "sha256 mismatch" in err


@pytest.mark.slow
def test_the_guarded_package_registers_with_its_guard(
    tracking, model_name, tmp_path, byom, capsys, monkeypatch
):
    """reference then register-external: the registry holds the guarded graph and manifest,
    appearance network included (trained on the given images)."""
    onnx_path, manifest_path = byom
    images = write_images(tmp_path / "images", 120)
    code, summary, err = reference(
        capsys, "--onnx", str(onnx_path), "--manifest", str(manifest_path),
        "--images", str(images), "--out", str(tmp_path / "guarded"),
    )  # fmt: skip
    assert code == 0, err
    assert summary["cues"] == ["pixels", "confidence", "appearance"]
    monkeypatch.chdir(tmp_path)
    code = main(
        ["--params", str(PARAMS), "--model", model_name, "register-external",
         "--onnx", str(tmp_path / "guarded/model.onnx"),
         "--manifest", str(tmp_path / "guarded/manifest.json")]
    )  # fmt: skip
    assert code == 0
    from brainscan_training.registry import Registry
    from mlflow import MlflowClient

    registry = Registry(MlflowClient(), model_name)
    _, registered = registry.download_package("1", tmp_path / "download")
    assert registered.ood is not None
    assert registered.ood.threshold == pytest.approx(summary["threshold"])
