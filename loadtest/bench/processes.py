"""Processes the benchmark starts and watches: helper scripts, servers, their CPU and memory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

PYTHON = sys.executable


def log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def run_json(args: list[str], timeout: float, env: dict | None = None):
    """Run a helper script and parse the JSON line it prints last."""
    done = subprocess.run(
        [PYTHON, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http_ok(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


@contextmanager
def server(args: list[str], env: dict, ready_url: str, log_file: Path, timeout: float):
    """A server process, yielded once ``ready_url`` answers 200, in a process group of its own
    (its pid is the group's id) so that everything it starts is stopped with it on exit."""
    with open(log_file, "wb") as sink:
        process = subprocess.Popen(
            [PYTHON, *args], env=env, stdout=sink, stderr=sink, start_new_session=True
        )
        try:
            wait_http_ok(ready_url, process, timeout)
            yield process
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen, grace: float = 30) -> None:
    """SIGTERM to the process group ``process`` leads (it was started in a session of its
    own), SIGKILL to what is left of it after ``grace`` seconds."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children that outlived their parent too
    process.wait()


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident set size now and its peak (VmHWM), in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


@dataclass(frozen=True)
class Stat:
    """What the bench reads of ``/proc/<pid>/stat``."""

    pgrp: int
    cpu_ticks: int
    """utime + stime: CPU time of every thread, in clock ticks."""
    rss_pages: int


def parse_stat(text: str) -> Stat:
    """``/proc/<pid>/stat``'s text -> its process group, CPU ticks and resident pages. The
    command name (field 2, in parentheses) may hold spaces and parentheses: the fields are
    counted from the last ``)``."""
    fields = text.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    return Stat(
        pgrp=int(fields[2]), cpu_ticks=int(fields[11]) + int(fields[12]), rss_pages=int(fields[21])
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    return parse_stat(Path(f"/proc/{pid}/stat").read_text()).cpu_ticks / os.sysconf("SC_CLK_TCK")


def group_stats(pgid: int) -> dict[int, Stat]:
    """Every live process of process group ``pgid``, by pid."""
    members = {}
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = parse_stat(path.read_text())
        except (OSError, IndexError, ValueError):  # exited meanwhile
            continue
        if stat.pgrp == pgid:
            members[int(path.parent.name)] = stat
    return members


def group_cpu_seconds(pgid: int) -> float:
    """CPU time so far of the live processes of group ``pgid`` (a server and what it started)."""
    ticks = sum(stat.cpu_ticks for stat in group_stats(pgid).values())
    return ticks / os.sysconf("SC_CLK_TCK")


def group_rss_mb(pgid: int) -> dict[int, float]:
    """Resident memory of each live process of group ``pgid``, MB, by pid."""
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
    return {pid: stat.rss_pages * page_mb for pid, stat in group_stats(pgid).items()}


def inference_env(package_dir: Path, port: int, **settings: str) -> dict[str, str]:
    """Environment of an inference service serving ``package_dir`` (a version directory) alone."""
    return {
        **os.environ,
        "INFERENCE_MODEL_DIR": str(package_dir.parent),
        "INFERENCE_HOST": "127.0.0.1",
        "INFERENCE_PORT": str(port),
        "INFERENCE_MODEL_POLL_INTERVAL": "0",
        **settings,
    }


def gateway_env(inference_url: str, model_name: str, port: int, **settings: str) -> dict[str, str]:
    """Environment of a gateway in front of ``inference_url``, its defaults otherwise."""
    return {
        **os.environ,
        "GATEWAY_INFERENCE_URL": inference_url,
        "GATEWAY_MODEL_NAME": model_name,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",  # one client sends everything here
        "GATEWAY_LOG_LEVEL": "WARNING",
        **settings,
    }
