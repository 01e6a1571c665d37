"""`make demo` as a user runs it (a subprocess of `python -m brainscan_localstack.demo`), on free
ports in a scratch folder: a taken port is refused before anything starts, and SIGTERM stops
every process it started, as Ctrl-C does.

The SIGTERM test runs the real MLflow server and the real `dvc repro`, on a one-stage DVC
project whose stage only waits: the part of the demo that owns child processes, without
training a model."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from brainscan_localstack.processes import free_port, is_healthy, port_in_use

BIN = Path(sys.executable).parent
PORT_OPTIONS = ("--mlflow-port", "--gateway-port", "--inference-port", "--model-sync-port")


def demo_command(ports: dict[str, int]) -> list[str]:
    command = [sys.executable, "-m", "brainscan_localstack.demo", "--serve", "no"]
    for option in PORT_OPTIONS:
        command += [option, str(ports[option])]
    return command


@pytest.fixture
def ports() -> dict[str, int]:
    return {option: free_port() for option in PORT_OPTIONS}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A program holding a port: a socket that listens and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (the demo's children name its scratch folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("taken", PORT_OPTIONS)
def test_a_taken_port_is_refused_before_anything_starts(tmp_path, ports, listener, taken):
    ports[taken] = listener.getsockname()[1]
    started = time.monotonic()
    result = subprocess.run(
        demo_command(ports), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    name = {"--mlflow-port": "MLflow", "--gateway-port": "gateway",
            "--inference-port": "inference", "--model-sync-port": "model-sync"}[taken]  # fmt: skip
    assert f"port {ports[taken]} ({name}) already in use" in result.stderr
    assert "serving" not in result.stdout.lower()
    # Nothing was started: no MLflow store, no service state, no server on the free ports.
    assert not (tmp_path / ".mlflow").exists() and not (tmp_path / ".demo").exists()
    assert not any(port_in_use(port) for option, port in ports.items() if option != taken)
    assert time.monotonic() - started < 60


def test_sigterm_stops_mlflow_and_the_pipeline_like_ctrl_c(tmp_path, ports):
    subprocess.run([str(BIN / "dvc"), "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    stage = "import os, time; open('stage.pid', 'w').write(str(os.getpid())); time.sleep(600)"
    (tmp_path / "dvc.yaml").write_text(
        textwrap.dedent(f"""\
            stages:
              wait:
                cmd: python -c "{stage}"
            """)
    )
    log = open(tmp_path / "demo.log", "wb")  # noqa: SIM115 - closed below
    demo = subprocess.Popen(
        demo_command(ports), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    mlflow_url = f"http://127.0.0.1:{ports['--mlflow-port']}/health"
    pid_file = tmp_path / "stage.pid"
    try:
        deadline = time.monotonic() + 180
        while not (pid_file.exists() and pid_file.read_text()):
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()
            assert time.monotonic() < deadline, "the pipeline's stage never started"
            time.sleep(0.3)
        stage_pid = int(pid_file.read_text())
        assert is_healthy(mlflow_url)
        mlflow_pids = processes_mentioning(str(tmp_path / ".mlflow"))
        assert mlflow_pids  # the server (and its workers) name their store

        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 130
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert "stopped (SIGTERM)" in output
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (alive(stage_pid) or processes_mentioning(str(tmp_path))):
        time.sleep(0.2)
    assert not alive(stage_pid), "the pipeline's stage outlived the demo"
    assert processes_mentioning(str(tmp_path)) == [], "MLflow outlived the demo"
    assert not is_healthy(mlflow_url, timeout=1.0)
    assert not port_in_use(ports["--mlflow-port"])
