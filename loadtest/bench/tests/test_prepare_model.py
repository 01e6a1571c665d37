"""The models the bench serves: the pipeline's guarded package with its export, any package as
given, the untrained project model with the bench's guard, and the reference-size model."""

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


def served(directory: str):
    """The manifest of a package the bench serves, after checking it as inference will."""
    onnx_path, manifest = load_package(Path(directory))
    verify_package(onnx_path, manifest)
    assert manifest.version is None  # the directory names the version
    return manifest


def test_a_given_package_is_served_as_version_one(tiny_package, tmp_path):
    info = prepare("--artifacts", ".", "--workdir", str(tmp_path), "--package", str(tiny_package))
    assert Path(info["package_dir"]) == tmp_path / "models" / "1"
    assert "plain_package_dir" not in info  # no guard: nothing to measure its cost against
    assert info["model"] == f"tiny, 8×8 px (package {tiny_package})"
    assert served(info["package_dir"]).ood is None


def test_a_given_guarded_package_is_served_against_the_given_plain_one(
    tiny_guarded_package, tiny_package, tmp_path
):
    info = prepare(
        "--artifacts", ".", "--workdir", str(tmp_path),
        "--package", str(tiny_guarded_package), "--plain-package", str(tiny_package),
    )  # fmt: skip
    assert served(info["package_dir"]).ood is not None
    assert served(info["plain_package_dir"]).ood is None
    assert Path(info["plain_package_dir"]) == tmp_path / "plain" / "1"
    assert info["guard_origin"] == str(tiny_guarded_package)
    assert info["plain_origin"] == str(tiny_package)


def test_a_given_package_the_service_would_refuse_is_refused_at_once(
    tiny_guarded_package, tmp_path
):
    manifest = json.loads((tiny_guarded_package / "manifest.json").read_text())
    manifest["ood"]["threshold"] *= 2  # no longer the section the graph was built with
    (tiny_guarded_package / "manifest.json").write_text(json.dumps(manifest))
    args = ["--artifacts", ".", "--workdir", str(tmp_path / "w")]
    done = subprocess.run(
        [sys.executable, str(PREPARE), *args, "--package", str(tiny_guarded_package)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "the inference service would refuse it: the manifest's out-of-distribution" in (
        done.stderr
    )


def test_a_plain_package_beside_an_unguarded_one_is_not_compared(tiny_package, tmp_path):
    info = prepare(
        "--artifacts", ".", "--workdir", str(tmp_path),
        "--package", str(tiny_package), "--plain-package", str(tiny_package),
    )  # fmt: skip
    assert "plain_package_dir" not in info and "guard_origin" not in info


def test_the_pipelines_guarded_package_is_served_against_the_export_it_was_made_from(
    tiny_guarded_package, tiny_package, tmp_path
):
    artifacts = tmp_path / "artifacts"
    for source, name in ((tiny_package, "export"), (tiny_guarded_package, "package")):
        (artifacts / name).mkdir(parents=True)
        for file in ("model.onnx", "manifest.json"):
            (artifacts / name / file).write_bytes((source / file).read_bytes())
    info = prepare("--artifacts", str(artifacts), "--workdir", str(tmp_path / "work"))
    guarded, plain = served(info["package_dir"]), served(info["plain_package_dir"])
    assert guarded.ood is not None and plain.ood is None
    assert guarded.model_copy(update={"ood": None, "onnx_sha256": ""}) == plain.model_copy(
        update={"onnx_sha256": ""}
    )
    assert info["onnx_origin"] == info["guard_origin"] == str(artifacts / "package")
    assert info["plain_origin"] == str(artifacts / "export")


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
def test_without_the_pipelines_export_the_untrained_model_gets_the_benchs_guard(
    tiny_guarded_package, tmp_path
):
    artifacts = tmp_path / "artifacts"
    (artifacts / "package").mkdir(parents=True)  # a guarded package without its export:
    for file in ("model.onnx", "manifest.json"):  # not to be compared with an untrained model
        (artifacts / "package" / file).write_bytes((tiny_guarded_package / file).read_bytes())
    info = prepare("--artifacts", str(artifacts), "--workdir", str(tmp_path / "w"), timeout=900)
    guarded, plain = served(info["package_dir"]), served(info["plain_package_dir"])
    assert (guarded.name, guarded.input.height) == ("brainscan-mobilenetv2", 128)
    assert [cue.name for cue in guarded.ood.cue_names] == [
        "pixels", "texture", "features", "confidence", "appearance",
    ]  # fmt: skip
    assert plain.ood is None and plain.input == guarded.input
    assert info["guard_origin"].startswith("fitted by the bench on 320 synthetic slices")
    assert info["model"].startswith("MobileNetV2 alpha 0.35, 128 px (the project's model; untr")


@pytest.mark.slow
def test_the_reference_model_is_mobilenetv2_alpha_1_at_224_px_from_the_training_code(tmp_path):
    info = prepare("--artifacts", ".", "--workdir", str(tmp_path), "--reference", timeout=900)
    assert info["model"].startswith("MobileNetV2 alpha 1, 224 px (reference")
    onnx_path, manifest = load_package(Path(info["package_dir"]))
    verify_package(onnx_path, manifest)
    assert (manifest.name, manifest.input.height, manifest.input.width) == (
        "reference-mobilenetv2",
        224,
        224,
    )
    assert manifest.outputs.activation_map is not None  # exported like the project's model
