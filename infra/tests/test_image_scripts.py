"""The scripts the images and their builds rely on: the HEALTHCHECK probe against a real HTTP
server, the shell scripts' syntax, the MLflow image's pins against the clients' lock."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from infra_dockerfiles import REPO

HEALTHCHECK = REPO / "infra/images/healthcheck.py"


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = {"/ok": 200, "/starting": 503}.get(self.path, 404)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def health_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_probe_passes_on_2xx(health_server):
    assert _probe("NO_SUCH_VARIABLE", str(health_server), "/ok").returncode == 0


def test_probe_fails_on_503_and_says_why(health_server):
    result = _probe("NO_SUCH_VARIABLE", str(health_server), "/starting")
    assert result.returncode == 1
    assert "503" in result.stderr


def test_probe_fails_when_nothing_listens():
    result = _probe("NO_SUCH_VARIABLE", "1", "/ok")
    assert result.returncode == 1
    assert "http://127.0.0.1:1/ok" in result.stderr


def test_probe_follows_the_services_port_setting(health_server):
    # The default port points nowhere; the service's own setting wins.
    result = _probe("GATEWAY_PORT", "1", "/ok", env={"GATEWAY_PORT": str(health_server)})
    assert result.returncode == 0


@pytest.mark.parametrize(
    "script",
    ["infra/images/build.sh", "infra/images/build-base.sh", "infra/mlflow/start-mlflow.sh"],
)
def test_shell_scripts_parse(script):
    shell = "sh" if script.endswith("start-mlflow.sh") else "bash"  # the image has no bash need
    result = subprocess.run([shell, "-n", str(REPO / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(REPO / script, os.X_OK), f"{script} is not executable"


def test_build_script_refuses_an_unknown_component():
    result = subprocess.run(
        ["bash", str(REPO / "infra/images/build.sh"), "nonsense"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "unknown component 'nonsense'" in result.stderr


def test_mlflow_image_runs_the_clients_mlflow_version(uv_lock):
    locked = {p["name"]: p["version"] for p in uv_lock["package"]}
    requirements = (REPO / "infra/mlflow/requirements.txt").read_text()
    pinned = dict(re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", requirements, re.MULTILINE))
    assert pinned["mlflow"] == locked["mlflow"]
    assert pinned["mlflow-skinny"] == locked["mlflow-skinny"]
    assert f"mlflow=={locked['mlflow']}" in (REPO / "infra/mlflow/requirements.in").read_text()


def test_mlflow_requirements_are_hash_locked():
    requirements = (REPO / "infra/mlflow/requirements.txt").read_text()
    blocks = re.split(r"\n(?=[a-z0-9])", requirements.split("\n", 2)[2])
    pins = [block for block in blocks if "==" in block]
    assert len(pins) > 50
    assert all("--hash=sha256:" in block for block in pins)


def test_containers_conf_selects_runc_and_raises_limits():
    import tomllib

    conf = tomllib.loads((REPO / "infra/images/containers.conf").read_text())
    assert conf["engine"]["runtime"] == "runc"
    assert "nofile=20000:20000" in conf["containers"]["default_ulimits"]
