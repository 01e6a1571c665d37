"""The training pipeline's parameters shrunk to minutes on 2 cores, and a DVC project of it, for
tests that run it with real DVC.

A handful of 64 px images per class, a 32 px model and one epoch per phase: the model means
nothing, every stage still runs as in production (``dvc repro``, the training image, the demo).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

# What `dvc repro` needs from the repository: the pipeline, and the sources its stages import
# and declare as dependencies (.gitignore too: DVC refuses to run when it ignores dvc.lock).
PIPELINE_FILES = ("dvc.yaml", ".dvcignore", ".gitignore")
PIPELINE_SOURCES = ("training/src", "libs/manifest/src", "libs/synthetic-mri/src")

TINY_PROFILE = {
    "train_per_class": 24,
    "test_per_class": 8,
    "epochs": 1,
    "finetune_epochs": 1,
    "batch_size": 16,
    "learning_rate": 0.003,
    "finetune_learning_rate": 0.0003,
    "finetune_top_layers": 10,
    "early_stopping_patience": 1,
}


def tiny_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` (as read from params.yaml) with the tiny profile active."""
    tiny = copy.deepcopy(params)
    tiny["profile"] = "tiny"
    tiny["profiles"]["tiny"] = dict(TINY_PROFILE)
    tiny["data"]["image_size"] = 64
    tiny["model"]["input_size"] = 32
    tiny["export"]["parity_images"] = 16
    return tiny


def pipeline_env(**extra: str) -> dict[str, str]:
    """This environment with this interpreter's bin first on PATH (stage commands call
    `python`) and a git identity, plus ``extra`` (e.g. MLFLOW_TRACKING_URI)."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "t@example.org",
        **extra,
    }  # fmt: skip


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a command that must succeed; its stdout (both streams' tails in the failure)."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, (
        f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def dvc_project(repo: Path, root: Path, params_yaml: str, env: dict[str, str]) -> Path:
    """A git + DVC checkout of ``repo``'s pipeline in ``root`` with these params, committed, and
    its own DVC remote (``root``'s sibling ``remote``)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in PIPELINE_FILES:
        shutil.copy(repo / name, root / name)
    shutil.copytree(repo / ".dvc", root / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    for package in PIPELINE_SOURCES:
        shutil.copytree(
            repo / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (root / "params.yaml").write_text(params_yaml)
    run(["git", "init", "-q"], root, env)
    run(["dvc", "remote", "modify", "local", "url", str(root.parent / "remote")], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "pipeline"], root, env)
    return root
