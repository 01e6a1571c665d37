"""Fixtures for the offline checks of the Jenkins pipelines and jobs: the Jenkinsfiles' and the
library's text, the jobs rendered by jenkins-job-builder, one npm-groovy-lint run over every
Jenkinsfile and library file, and the Groovy runtime that npm-groovy-lint brings."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ci_jenkinsfiles import JENKINSFILES, LIBRARY_FILES, REPO

GROOVY_LINT = "npm-groovy-lint@15.2.2"
LINT_TIMEOUT = 400
# A Groovy syntax error the check must catch (an unclosed call).
BROKEN_JENKINSFILE = """pipeline {
    agent any
    stages {
        stage('broken') {
            steps {
                sh('make test'
            }
        }
    }
}
"""


@pytest.fixture(scope="session")
def jenkinsfiles() -> dict[str, str]:
    return {name: (REPO / path).read_text() for name, path in JENKINSFILES.items()}


@pytest.fixture(scope="session")
def library() -> dict[str, str]:
    """ci/jenkins-library/vars/*.groovy: path -> text."""
    return {path: (REPO / path).read_text() for path in LIBRARY_FILES}


@pytest.fixture(scope="session")
def rendered_jobs(tmp_path_factory) -> Path:
    """`jenkins-jobs test` of ci/jobs, offline, one config.xml per job."""
    out = tmp_path_factory.mktemp("jobs")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "jenkins-jobs"), "test", "--config-xml",
         str(REPO / "ci/jobs"), "-o", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _npm_groovy_lint(npx: str, files: list[str], cwd: Path) -> dict[str, list[dict]]:
    """One npm-groovy-lint run (one JVM) over files: path -> its findings. The process group is
    killed on timeout, so no Java process outlives the test."""
    command = [npx, "--yes", GROOVY_LINT, "--noserver", "--config",
               str(REPO / "ci/.groovylintrc.json"), "--output", "json", *files]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=LINT_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"npm-groovy-lint did not finish in {LINT_TIMEOUT} s on {files}")
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        pytest.fail(f"npm-groovy-lint gave no report:\n{stdout[-2000:]}{stderr[-2000:]}")
    return {path: entry.get("errors", []) for path, entry in report["files"].items()}


@pytest.fixture(scope="session")
def groovy_lint(tmp_path_factory) -> dict[str, list[dict]]:
    """npm-groovy-lint (Groovy syntax + CodeNarc's Jenkinsfile rules) over every Jenkinsfile and
    library file, and over one broken file in a run of its own (a parse error stalls a run of
    several files)."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js 20) is missing: npm-groovy-lint cannot run")
    work = tmp_path_factory.mktemp("groovy")
    broken = work / "Jenkinsfile"
    broken.write_text(BROKEN_JENKINSFILE)
    files = [str(REPO / p) for p in [*JENKINSFILES.values(), *LIBRARY_FILES]]
    findings = _npm_groovy_lint(npx, files, work)
    findings["broken"] = _npm_groovy_lint(npx, [str(broken)], work)[str(broken)]
    return findings


@pytest.fixture(scope="session")
def groovy_classpath(groovy_lint) -> str:
    """Groovy's jars from the npm-groovy-lint package (in npx's cache once it has run), to run
    library code with a real Groovy outside Jenkins."""
    java = shutil.which("java")
    found = sorted(Path.home().glob(".npm/_npx/*/node_modules/npm-groovy-lint/lib/java/groovy/lib"))
    if java is None or not found:
        pytest.skip("no java or no Groovy jars from npm-groovy-lint: the library cannot run here")
    jars = [next(found[-1].glob(f"{name}-[0-9]*.jar"), None) for name in ("groovy", "groovy-json")]
    if None in jars:
        pytest.skip(f"Groovy jars missing in {found[-1]}")
    return os.pathsep.join(str(jar) for jar in jars)
