"""The stack from docker-compose.yml in real containers (podman + podman-compose), for the
end-to-end image test. `make e2e-images` builds the images first; this starts, checks and always
removes one uniquely named compose project (containers, network, volumes)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PROJECT_PREFIX = "brainscan-e2e-"
MODEL_NAME = "brainscan-mobilenetv2"
# Order of start-up: each waits for the one before to be healthy (what depends_on says).
START_ORDER = ["mlflow", "model-sync", "inference", "gateway"]
HEALTH_TIMEOUT = {"mlflow": 180.0, "model-sync": 90.0, "inference": 90.0, "gateway": 90.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def podman_env() -> dict[str, str]:
    """The environment podman needs on these machines (runc, ulimits, chroot builds)."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(REPO / "infra/images/containers.conf"))
    env.setdefault("BUILDAH_ISOLATION", "chroot")
    return env


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True,
        check=check, timeout=timeout,
    )  # fmt: skip


@dataclass
class Stack:
    """One compose project: its name, env file, published ports and containers."""

    project: str
    env_file: Path
    ports: dict[str, int]
    settings: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        command = [
            str(VENV_BIN / "podman-compose"), "--project-name", self.project,
            "--env-file", str(self.env_file), "-f", str(REPO / "docker-compose.yml"), *args,
        ]  # fmt: skip
        result = subprocess.run(
            command, cwd=REPO, env={**podman_env(), **self.settings},
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command[1:])} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def containers(self, service: str | None = None) -> list[dict]:
        """Containers of the project (of one service), as `podman ps --format json` gives them."""
        filters = ["--filter", f"label=io.podman.compose.project={self.project}"]
        if service:
            filters += ["--filter", f"label=io.podman.compose.service={service}"]
        listed = podman("ps", "-a", *filters, "--format", "json").stdout
        return sorted(json.loads(listed or "[]"), key=lambda c: c["Names"][0])

    def names(self, service: str) -> list[str]:
        return [c["Names"][0] for c in self.containers(service)]

    def logs(self, container: str, lines: int = 40) -> str:
        result = podman("logs", "--tail", str(lines), container, check=False)
        return f"--- {container} ---\n{result.stdout}{result.stderr}"

    def wait_healthy(self, service: str, timeout: float) -> None:
        """podman 4.3 without systemd never runs healthchecks itself: run them until they pass."""
        names = self.names(service)
        assert names, f"no container for service {service}"
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending:
            for name in sorted(pending):
                state = podman("inspect", "--format", "{{.State.Status}}", name, check=False)
                if state.stdout.strip() in {"exited", "stopped", "dead"}:
                    raise AssertionError(f"{name} stopped while starting\n{self.logs(name)}")
                if podman("healthcheck", "run", name, check=False).returncode == 0:
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                tails = "\n".join(self.logs(name) for name in sorted(pending))
                raise AssertionError(f"{sorted(pending)} unhealthy after {timeout:.0f} s\n{tails}")
            if pending:
                time.sleep(2)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def image_labels(self, image: str) -> dict[str, str]:
        listed = podman("image", "inspect", "--format", "{{json .Labels}}", image).stdout
        return json.loads(listed)

    def exec(self, container: str, *command: str) -> subprocess.CompletedProcess:
        return podman("exec", container, *command, check=False)

    def train_cli(self, *args: str) -> dict:
        """`brainscan-train ...` on the host against the containerised MLflow; its JSON answer."""
        result = subprocess.run(
            [str(VENV_BIN / "brainscan-train"), *args], cwd=REPO,
            env={**os.environ, "MLFLOW_TRACKING_URI": self.url("mlflow")},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, f"brainscan-train {args[0]}: {result.stderr[-3000:]}"
        return json.loads(result.stdout.strip().splitlines()[-1])

    def gateway_readiness(self) -> tuple[int, dict]:
        """Status and body of the gateway's /readyz, seen from the host."""
        try:
            response = httpx.get(f"{self.url('gateway')}/readyz", timeout=5)
        except httpx.HTTPError as exc:
            return 0, {"error": str(exc)}
        return response.status_code, response.json()

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 2.0):
        """Poll predicate until it returns something truthy; fail saying what was awaited, with
        the last log lines of every container."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                tails = "\n".join(self.logs(c["Names"][0], 15) for c in self.containers())
                raise AssertionError(f"{what}: not reached after {timeout:.0f} s\n{tails}")
            time.sleep(interval)

    def remove(self) -> None:
        """Remove everything the project made, even if compose itself is in a bad state."""
        try:
            self.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180)
        except Exception as exc:  # the sweep below still runs
            sys.stderr.write(f"compose down failed: {exc}\n")
        sweep_project(self.project)


def sweep_project(project: str) -> None:
    """Remove a project's containers, pods, volumes and networks by their compose labels."""
    label = f"label=io.podman.compose.project={project}"
    ids = podman("ps", "-aq", "--filter", label, check=False).stdout.split()
    if ids:
        podman("rm", "-f", "-t", "5", *ids, check=False)
    for kind in ("pod", "volume", "network"):
        listed = podman(kind, "ls", "--filter", label, "--format", "{{.Name}}", check=False)
        for name in listed.stdout.split():
            podman(kind, "rm", "-f", name, check=False)
    pod = f"pod_{project}"
    if podman("pod", "exists", pod, check=False).returncode == 0:
        podman("pod", "rm", "-f", pod, check=False)


def sweep_stale_projects() -> None:
    """Projects left by an e2e run that was killed (its pid is gone) are removed first."""
    listed = podman("ps", "-a", "--format", "{{.Labels}}", check=False).stdout
    projects = {
        part.split(":", 1)[1]
        for line in listed.splitlines()
        for part in line.strip("map[]").split()
        if part.startswith("io.podman.compose.project:" + PROJECT_PREFIX)
    }
    for project in projects:
        pid = project.removeprefix(PROJECT_PREFIX).split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            sweep_project(project)


@contextmanager
def running_stack(tmp_path_factory, services: list[str]) -> Iterator[Stack]:
    """Start services (in START_ORDER) as a new compose project; always remove it after."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: apt-get install -y podman runc (docs/containers.md)")
    sweep_stale_projects()
    from cryptography.fernet import Fernet

    ports = {"gateway": _free_port(), "mlflow": _free_port(), "model-sync": _free_port()}
    settings = {
        "BRAINSCAN_IMAGE_PREFIX": os.environ.get("IMAGE_PREFIX", "localhost/brainscan"),
        "BRAINSCAN_TAG": os.environ.get("IMAGE_TAG", "latest"),
        "GATEWAY_PUBLISH": f"127.0.0.1:{ports['gateway']}",
        "MLFLOW_PUBLISH": f"127.0.0.1:{ports['mlflow']}",
        "MODELSYNC_PUBLISH": f"127.0.0.1:{ports['model-sync']}",
        # Webhooks on (the fast path), polling as the safety net.
        "MODELSYNC_WEBHOOK_SECRET": secrets.token_urlsafe(24),
        "MODELSYNC_WEBHOOK_URL": "http://model-sync:8002/v1/webhooks/mlflow",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "MODELSYNC_POLL_INTERVAL": "10",
        "INFERENCE_REPLICAS": "2",
    }
    env_file = tmp_path_factory.mktemp("compose") / "e2e.env"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    project = f"{PROJECT_PREFIX}{os.getpid()}-{secrets.token_hex(2)}"
    running = Stack(project=project, env_file=env_file, ports=ports, settings=settings)
    try:
        for service in (name for name in START_ORDER if name in services):
            # --no-deps: podman-compose cannot wait for `service_healthy` here, so this does.
            running.compose("up", "--detach", "--no-build", "--no-deps", service)
            running.wait_healthy(service, HEALTH_TIMEOUT[service])
        yield running
    finally:
        running.remove()


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """The whole stack (no model yet), started in dependency order and healthy."""
    with running_stack(tmp_path_factory, START_ORDER) as started:
        yield started


@pytest.fixture(scope="session")
def registry_stack(tmp_path_factory) -> Iterator[Stack]:
    """MLflow alone, for the training job."""
    with running_stack(tmp_path_factory, ["mlflow"]) as started:
        yield started


@pytest.fixture(scope="session")
def model_package(tmp_path_factory) -> Path:
    """A small real package (untrained MobileNetV2 -> ONNX + manifest) made by the training code."""
    out = tmp_path_factory.mktemp("package")
    subprocess.run(
        [sys.executable, str(REPO / "infra/e2e/make_model_package.py"), str(out)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out
