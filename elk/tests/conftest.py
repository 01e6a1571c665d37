"""Fixtures for the ELK checks: the field catalogue, the pipeline, real logs and their documents.

``stack_run`` runs the real services once per session (MLflow + model-sync + inference +
gateway as processes, ~1 min); tests that read it are marked slow. The helper modules in
elk/tools, elk/tests and loadtest are put on the import path here.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ELK_DIR = Path(__file__).resolve().parents[1]
REPO = ELK_DIR.parent
for helper_dir in (ELK_DIR / "tools", ELK_DIR / "tests", REPO / "loadtest"):
    if str(helper_dir) not in sys.path:
        sys.path.insert(0, str(helper_dir))

from elk_fields import Catalogue  # noqa: E402
from elk_inputs import METRICBEAT_SAMPLES, PIPELINE, SAVED_OBJECTS, filebeat_envelope  # noqa: E402
from elk_pipeline import Pipeline  # noqa: E402


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return Catalogue.load()


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    return Pipeline(PIPELINE, env={"BRAINSCAN_ENVIRONMENT": "test"})


@pytest.fixture(scope="session")
def saved_objects() -> list[dict]:
    return [json.loads(line) for line in SAVED_OBJECTS.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def stack_run(tmp_path_factory):
    """One real run of the services (see elk_stack_run)."""
    from elk_stack_run import run_stack

    return run_stack(tmp_path_factory.mktemp("stack-run"))


@pytest.fixture(scope="session")
def metricbeat_events() -> list[dict]:
    return json.loads(METRICBEAT_SAMPLES.read_text())


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, list]]:
    """A plain HTTP endpoint on a free loopback port that records what is POSTed to it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def jenkins_event() -> dict:
    """The event of a real run of elk/jenkins/build_event.py (as Jenkins' post step runs it)."""
    import os
    import subprocess

    env = {
        **os.environ,
        "JOB_NAME": "brainscan/gateway/main",
        "BUILD_NUMBER": "42",
        "BUILD_URL": "https://jenkins.example.org/job/brainscan/job/gateway/job/main/42/",
        "BRANCH_NAME": "main",
        "GIT_COMMIT": "9fca7e6a1b2c3d4e5f60718293a4b5c6d7e8f901",
    }
    env.pop("BRAINSCAN_BUILD_EVENTS_URL", None)
    run = subprocess.run(
        [sys.executable, str(ELK_DIR / "jenkins" / "build_event.py"), "--result", "FAILURE",
         "--duration-ms", "184250", "--start-ms", "1795600000000"],
        env=env, capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return json.loads(run.stdout)


@pytest.fixture(scope="session")
def pipeline_inputs(stack_run, metricbeat_events, jenkins_event) -> list[tuple[str, dict]]:
    """(input plugin, event) for everything that reaches Logstash in this check."""
    inputs = []
    for service, lines in stack_run.lines.items():
        offset = 0
        for line in lines:
            inputs.append(("beats", filebeat_envelope(line, service, offset)))
            offset += len(line) + 1
    inputs += [("beats", event) for event in metricbeat_events]
    inputs.append(("http", jenkins_event))
    return inputs


@pytest.fixture(scope="session")
def documents(pipeline, pipeline_inputs) -> list[dict]:
    """What Elasticsearch receives: every input run through the brainscan pipeline."""
    return [pipeline.run(event, plugin) for plugin, event in pipeline_inputs]
