"""The models the bench serves: any package as given, and the reference-size model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from brainscan_manifest.verify import load_package, verify_package

PREPARE = Path(__file__).resolve().parents[1] / "prepare_model.py"


def prepare(*args: str, timeout: float = 120) -> dict:
    done = subprocess.run(
        [sys.executable, str(PREPARE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_given_package_is_served_as_version_one_without_a_keras_model(tiny_package, tmp_path):
    info = prepare("--repo", ".", "--workdir", str(tmp_path), "--package", str(tiny_package))
    assert Path(info["package_dir"]) == tmp_path / "models" / "1"
    assert "keras_file" not in info
    assert info["model"] == f"tiny, 8×8 px (package {tiny_package})"
    onnx_path, manifest = load_package(Path(info["package_dir"]))
    assert manifest.version is None  # the directory names the version
    verify_package(onnx_path, manifest)


def test_the_project_model_is_described_from_its_manifest(bench, tmp_path):
    prepare_model = bench("prepare_model")
    package = tmp_path / "pkg"
    package.mkdir()
    manifest = {"input": {"height": 128}, "lineage": {"params": {"model.alpha": 0.35}}}
    (package / "manifest.json").write_text(json.dumps(manifest))
    described = prepare_model._describe_package(package, "/repo/artifacts/export")
    assert described == (
        "MobileNetV2 alpha 0.35, 128 px (the project's model; trained, /repo/artifacts/export)"
    )


@pytest.mark.slow
def test_the_reference_model_is_mobilenetv2_alpha_1_at_224_px_from_the_training_code(tmp_path):
    info = prepare("--repo", ".", "--workdir", str(tmp_path), "--reference", timeout=900)
    assert info["model"].startswith("MobileNetV2 alpha 1, 224 px (reference")
    onnx_path, manifest = load_package(Path(info["package_dir"]))
    verify_package(onnx_path, manifest)
    assert (manifest.name, manifest.input.height, manifest.input.width) == (
        "reference-mobilenetv2",
        224,
        224,
    )
    assert manifest.outputs.activation_map is not None  # exported like the project's model
    assert Path(info["keras_file"]).is_file()  # for the Flask + Keras baseline
