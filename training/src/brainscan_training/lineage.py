"""Where a model came from: the code commit and the DVC hash of the data it saw."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml


def git_commit(repo: Path = Path(".")) -> str | None:
    """HEAD's commit, suffixed with '-dirty' when tracked files differ from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def dvc_data_hash(lock_path: Path = Path("dvc.lock"), output: str = "data/raw") -> str | None:
    """The md5 DVC recorded for an output in dvc.lock (None before the first `dvc repro`)."""
    if not lock_path.is_file():
        return None
    lock = yaml.safe_load(lock_path.read_text()) or {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs", []):
            if out.get("path") == output:
                return out.get("md5")
    return None
