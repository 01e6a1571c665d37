"""The library's path filter (brainscanChanged) run by a real Groovy outside Jenkins: it decides
from the changes since the last green build, and its globs match exactly the repository files
these tests' own glob reading says they match (so the coverage checks test what Jenkins runs)."""

from __future__ import annotations

import json
import subprocess

import pytest
from ci_jenkinsfiles import (
    JENKINSFILES,
    LIBRARY_FILES,
    PATH_FILTER,
    REPO,
    glob_matches,
    path_filter,
)

HARNESS = REPO / "ci/tests/path_filter_harness.groovy"
GLOBS = ["libs/**", "uv.lock"]


def _run(groovy_classpath: str, spec: dict) -> dict:
    result = subprocess.run(
        ["java", "-cp", groovy_classpath, "groovy.ui.GroovyMain", str(HARNESS),
         str(REPO / PATH_FILTER)],
        input=json.dumps(spec), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _build(number: int, result: str | None, *paths: str) -> dict:
    return {"number": number, "result": result, "paths": list(paths)}


SCENARIOS = {
    "first build of a branch": ([_build(1, None)], True),
    "own file changed": ([_build(2, None, "libs/manifest/x.py"), _build(1, "SUCCESS")], True),
    # The walk stops at the last green build: what it built does not count again.
    "only other files changed": (
        [_build(2, None, "docs/x.md", "uv.lockx"), _build(1, "SUCCESS", "libs/x.py")],
        False,
    ),
    "own file in a failed build since the last green one": (
        [_build(3, None, "docs/x.md"), _build(2, "FAILURE", "uv.lock"), _build(1, "SUCCESS")],
        True,
    ),
    "own file in an aborted build since the last green one": (
        [_build(3, None, "docs/x.md"), _build(2, "ABORTED", "libs/a/b.py"), _build(1, "SUCCESS")],
        True,
    ),
    "own file only before the last green build": (
        [_build(3, None, "docs/x.md"), _build(2, "SUCCESS"), _build(1, "FAILURE", "uv.lock")],
        False,
    ),
}


@pytest.fixture(scope="module")
def answers(groovy_classpath) -> dict:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    tracked = sorted({*tracked, *LIBRARY_FILES})  # the library may not be committed yet
    globs = sorted({glob for path in JENKINSFILES.values()
                    for glob in path_filter((REPO / path).read_text())})  # fmt: skip
    probes = ["a.py", "dir/.dvc/config", "xdvc/config", "libs", "services/gateway"]
    spec = {
        "globs": {glob: [*tracked, *probes] for glob in globs},
        "scenarios": [{"globs": GLOBS, "builds": builds} for builds, _ in SCENARIOS.values()],
    }
    return {"tracked": tracked + probes, "spec": spec, **_run(groovy_classpath, spec)}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_filter_decides_from_the_changes_since_the_last_green_build(answers, scenario):
    index = list(SCENARIOS).index(scenario)
    assert answers["results"][index] is SCENARIOS[scenario][1]


def test_the_library_and_these_tests_read_every_glob_alike(answers):
    assert answers["matches"]
    for glob, matched in answers["matches"].items():
        expected = [path for path in answers["tracked"] if glob_matches(glob, path)]
        assert matched == expected, glob
        assert matched, f"{glob} matches no file"
