"""A test run ended by SIGTERM (a CI timeout, `kill`) still stops the servers its fixtures start."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SUITE = """
import subprocess, sys, time
from pathlib import Path
import pytest

@pytest.fixture
def server(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    Path("{pid_file}").write_text(str(child.pid))
    yield child
    child.terminate()
    child.wait(10)

def test_runs_long(server):
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as stopped.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_sigterm_runs_the_fixtures_finalizers(tmp_path) -> None:
    pid_file = tmp_path / "server.pid"
    shutil.copy(REPO / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_suite.py").write_text(SUITE.format(pid_file=pid_file))
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text().isdigit()):
            assert time.monotonic() < deadline, "the fixture never started its server"
            time.sleep(0.05)
        server = int(pid_file.read_text())
        assert _alive(server)
        run.send_signal(signal.SIGTERM)
        output = run.communicate(timeout=30)[0].decode()
    finally:
        run.kill()
    assert not _alive(server), output
    assert "KeyboardInterrupt" in output
