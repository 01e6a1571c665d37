"""elk/jenkins/build_event.py, run as Jenkins runs it: the event it prints and posts."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

from elk_fields import check_event
from elk_inputs import ELK_DIR

SCRIPT = ELK_DIR / "jenkins" / "build_event.py"
JENKINS_ENV = {
    "JOB_NAME": "brainscan/inference/PR-7",
    "BUILD_NUMBER": "3",
    "BUILD_URL": "https://jenkins.example.org/job/brainscan/job/inference/job/PR-7/3/",
    "BRANCH_NAME": "PR-7",
    "GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
}


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BRAINSCAN_BUILD")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**environment, **JENKINS_ENV, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_event_is_ecs_and_describes_the_build(jenkins_event, catalogue):
    assert check_event(jenkins_event, catalogue) == []
    assert jenkins_event["event"]["dataset"] == "brainscan.ci"
    assert jenkins_event["event"]["outcome"] == "failure"
    assert jenkins_event["cicd"]["pipeline"] == {
        "name": "brainscan/gateway/main",
        "result": "failure",
        "run": {"id": "42"},
    }
    assert jenkins_event["event"]["duration"] == 184_250 * 1_000_000
    assert jenkins_event["event"]["start"] < jenkins_event["event"]["end"]
    assert jenkins_event["vcs"]["ref"]["head"]["name"] == "main"


def test_it_posts_with_basic_auth(http_receiver):
    url, received = http_receiver
    done = run(
        "--result", "SUCCESS", "--duration-ms", "1000", "--start-ms", "1795600000000",
        BRAINSCAN_BUILD_EVENTS_URL=url, BRAINSCAN_BUILD_EVENTS_USER="jenkins",
        BRAINSCAN_BUILD_EVENTS_PASSWORD="s3cret",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ((headers, body),) = received
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"jenkins:s3cret").decode()
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == json.loads(done.stdout)
    assert json.loads(body)["cicd"]["pipeline"]["result"] == "success"


def test_logging_down_never_fails_the_build():
    done = run(
        "--result", "ABORTED", "--duration-ms", "5", "--start-ms", "1795600000000",
        BRAINSCAN_BUILD_EVENTS_URL="http://127.0.0.1:9/",
    )  # fmt: skip
    assert done.returncode == 0
    assert "not delivered" in done.stderr
    assert json.loads(done.stdout)["cicd"]["pipeline"]["result"] == "cancellation"


def test_an_unknown_result_is_a_usage_error():
    done = run("--result", "GREEN", "--duration-ms", "5", "--start-ms", "0")
    assert done.returncode == 2 and "unknown Jenkins result" in done.stderr
