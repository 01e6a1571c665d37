"""DVC tracks the data set behind `data.source_dir` by content: with real DVC on the realistic
download, one changed image makes the data stage out of date and the next repro reads it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from brainscan_testsupport.pipeline import dvc_project, pipeline_env, run, tiny_params

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow  # real DVC, several runs of it: ~20 s each


def pipeline_params(source_dir: str) -> str:
    params = tiny_params(yaml.safe_load((REPO / "params.yaml").read_text()))
    params["data"].update(source="directory", source_dir=source_dir)
    return yaml.safe_dump(params, sort_keys=False)


@pytest.fixture
def project(real_archive: Path, tmp_path: Path):
    """The pipeline pointed at the download outside the project, as a team's folder would be."""
    env = pipeline_env()  # data and prepare need no MLflow
    root = dvc_project(REPO, tmp_path / "project", pipeline_params(str(real_archive)), env)
    return root, env, real_archive


def duplicate_groups(root: Path) -> int:
    return json.loads((root / "data/prepared/data_report.json").read_text())["duplicates"][
        "groups"
    ]


def test_a_changed_image_reruns_data_and_prepare(project):
    root, env, source = project
    first = run(["dvc", "repro", "prepare"], root, env)
    assert "Running stage 'data'" in first and "Running stage 'prepare'" in first
    assert duplicate_groups(root) == 7  # the download's groups (test_real_archive.py)
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["data"]["deps"]
    [dep] = [d for d in lock if d["path"] == str(source)]
    # Hashed file by file: every file of the folder, the __MACOSX side file too.
    assert dep["md5"].endswith(".dir")
    assert dep["nfiles"] == sum(1 for path in source.rglob("*") if path.is_file())
    assert "up to date" in run(["dvc", "status", "--with-deps", "prepare"], root, env)

    # One image changes in place (same name, same path): now an exact copy of another.
    changed = source / "archive/training/no_tumor/n1.jpg"
    changed.write_bytes((source / "archive/training/no_tumor/n0.jpg").read_bytes())
    status = run(["dvc", "status", "--with-deps", "prepare"], root, env)
    assert "changed deps" in status and f"modified:           {source}" in status

    second = run(["dvc", "repro", "prepare"], root, env)
    assert "Running stage 'data'" in second and "Running stage 'prepare'" in second
    copied = root / "data/raw/archive/training/no_tumor/n1.jpg"
    assert copied.read_bytes() == changed.read_bytes()
    assert duplicate_groups(root) == 8  # prepare saw the new copy

    third = run(["dvc", "repro", "prepare"], root, env)
    assert "Running stage" not in third


def test_a_dvc_added_data_set_is_pushed_pulled_and_versioned(real_archive: Path, tmp_path: Path):
    """docs/data.md's team workflow, command for command: dvc add, a default remote, push, pull,
    and a new version of the folder after an image changes."""
    env = pipeline_env()
    root = dvc_project(REPO, tmp_path / "project", pipeline_params("datasets/kaggle"), env)
    shutil.copytree(real_archive, root / "datasets/kaggle")
    run(["dvc", "add", "datasets/kaggle"], root, env)
    run(["dvc", "remote", "add", "-d", "team", str(tmp_path / "team-remote")], root, env)
    run(["git", "add", "datasets/kaggle.dvc", "datasets/.gitignore", ".dvc/config"], root, env)
    run(["git", "commit", "-qm", "data: the Kaggle set"], root, env)
    run(["dvc", "push"], root, env)
    assert any((tmp_path / "team-remote").rglob("*.dir"))  # the folder's listing is there

    # Another checkout has only git's files: `dvc pull` brings the folder back.
    shutil.rmtree(root / "datasets/kaggle")
    shutil.rmtree(root / ".dvc/cache")
    run(["dvc", "pull", "datasets/kaggle.dvc"], root, env)
    assert (root / "datasets/kaggle/archive/testing/no_tumor/tn1.png").is_file()
    assert "Running stage 'prepare'" in run(["dvc", "repro", "prepare"], root, env)
    assert duplicate_groups(root) == 7

    image = root / "datasets/kaggle/archive/training/no_tumor/n1.jpg"
    image.write_bytes((root / "datasets/kaggle/archive/training/no_tumor/n0.jpg").read_bytes())
    status = run(["dvc", "status", "--with-deps", "prepare"], root, env)
    assert "modified:           datasets/kaggle" in status
    before = (root / "datasets/kaggle.dvc").read_text()
    run(["dvc", "add", "datasets/kaggle"], root, env)  # the new data version
    assert (root / "datasets/kaggle.dvc").read_text() != before
    assert "Running stage 'data'" in run(["dvc", "repro", "prepare"], root, env)
    assert duplicate_groups(root) == 8
