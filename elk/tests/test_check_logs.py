"""elk/tools/check_logs.py, the command that checks logs taken from a running system."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from elk_inputs import ELK_DIR

SCRIPT = ELK_DIR / "tools" / "check_logs.py"
GOOD = {
    "@timestamp": "2026-11-26T10:00:00.000Z",
    "log.level": "info",
    "message": "prediction",
    "ecs.version": "1.6.0",
    "service": {"name": "brainscan-gateway", "version": "0.1.0"},
    "prediction": {"label": "glioma", "confidence": 0.93, "below_threshold": False},
}


def check(text: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "-"], input=text, capture_output=True, text=True, timeout=30
    )


def test_valid_lines_pass():
    done = check(json.dumps(GOOD) + "\n\n" + json.dumps(GOOD) + "\n")
    assert done.returncode == 0, done.stdout
    assert "2 events, 0 problems (ECS 9.4.0)" in done.stdout


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"reason": "x"}, "reason: neither ECS nor listed"),
        ({"prediction": {"confidence": "high"}}, "prediction.confidence: 'high' is not a float"),
        ({"http": {"response": {"status_code": "200"}}}, "is not a long"),
    ],
)
def test_each_problem_is_named(change, problem):
    done = check(json.dumps({**GOOD, **change}) + "\nnot json\n")
    assert done.returncode == 1
    assert problem in done.stdout
    assert "-:2: not JSON" in done.stdout


@pytest.mark.slow
def test_the_real_run_passes(stack_run):
    files = [str(stack_run.log_dir / f"{name}.log") for name in stack_run.lines]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *files], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout
