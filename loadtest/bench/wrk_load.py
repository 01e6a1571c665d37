"""One closed-loop load window driven by wrk, and what it cost the servers, from /proc.

wrk (C, epoll, ~0.05-0.25 ms of CPU per request where a Python client spends 1-3 ms) keeps
``concurrency`` connections busy: each sends its next request when the last is answered. Its
Lua scripts (``wrk/``) build the request once from a file, count the answers that are not 2xx
and print the run's summary as a JSON line (``report.lua``), which ``parse_summary`` reads.

A window is a warm-up run, not counted, then the measured run. Around the measured run the CPU
time of each watched server's process group (every process of it, all threads; the bench starts
each server as a group leader) is read from ``/proc/<pid>/stat``, and wrk's own CPU from the
kernel's account of waited-for children; each is divided by the requests answered in the run.
The servers' resident memory is read at its end. Any answer that is not 2xx, and any socket
error or timeout, fails the window (``WrkFailed``): a benchmark of error pages measures nothing.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from processes import group_cpu_seconds, group_rss_mb

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "wrk"
LOAD_GENERATOR = "wrk"
"""Key of the client's own CPU time per request in ``cpu_ms_per_request``."""
TIMEOUT_S = 30
"""wrk's per-request timeout (its default, 2 s, would count a slow answer as an error)."""
INSTALL_HINT = "`make bench` and .ci/run install it (Debian package wrk)"


class WrkFailed(RuntimeError):
    """wrk did not run, or a window had answers that were not 2xx or socket errors."""


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkFailed(f"wrk is not installed: {INSTALL_HINT}")
    return found


@dataclass(frozen=True)
class Target:
    """What a window sends where, and which servers (name -> process group id) it costs."""

    url: str
    script: str
    """A script of ``wrk/`` without ``.lua``: ``v2``, ``raw`` or ``multipart``."""
    args: tuple[str, ...]
    """The script's arguments: the body's file first."""
    watch: dict[str, int] = field(default_factory=dict)


def v2_target(url: str, body: Path, header_length: int, watch: dict[str, int]) -> Target:
    """A binary v2 body (``brainscan_v2protocol.encode_request``) and its JSON header's length."""
    return Target(url, "v2", (str(body), str(header_length)), watch)


def raw_target(url: str, body: Path, watch: dict[str, int]) -> Target:
    return Target(url, "raw", (str(body),), watch)


def multipart_target(url: str, body: Path, watch: dict[str, int]) -> Target:
    return Target(url, "multipart", (str(body),), watch)


@dataclass(frozen=True)
class WrkResult:
    """One measured run. Latencies are wrk's, in ms; every answer was 2xx."""

    concurrency: int
    requests: int
    duration_s: float
    throughput: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    cpu_ms_per_request: dict[str, float]
    """Each watched server's process group, then wrk's (``LOAD_GENERATOR``)."""
    rss_mb: dict[str, float]
    """Each watched server's process group, resident memory at the end of the run."""
    errors: int = 0
    """Always 0 (a window with errors raises): kept for the tables' failed-request notes."""


def parse_summary(stdout: str) -> dict:
    """The JSON line ``report.lua``'s done() printed last, its times converted to ms and s."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise WrkFailed(f"no JSON summary in wrk's output:\n{stdout[-2000:]}")
    raw = json.loads(lines[-1])
    summary = {key: value for key, value in raw.items() if not key.endswith("_us")}
    summary["duration_s"] = raw["duration_us"] / 1e6
    for key in ("p50", "p90", "p99", "max"):
        summary[f"{key}_ms"] = raw[f"{key}_us"] / 1000
    summary["socket_errors"] = sum(
        raw[key] for key in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return summary


def failures(summary: dict) -> str | None:
    """What went wrong in a run, or None: answers outside 2xx (counted by report.lua's
    response(); wrk's own count only has those >= 400), socket errors, timeouts, no answer."""
    problems = []
    bad = max(summary["non_2xx"], summary["status_errors"])
    if bad:
        problems.append(f"{bad} answers not 2xx (the first: {summary['first_bad_status']})")
    if summary["socket_errors"]:
        problems.append(
            f"{summary['socket_errors']} socket errors (connect {summary['connect_errors']}, "
            f"read {summary['read_errors']}, write {summary['write_errors']}, "
            f"timeout {summary['timeouts']})"
        )
    if summary["requests"] == 0:
        problems.append("no answer at all")
    return "; ".join(problems) or None


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk_command(target: Target, concurrency: int, seconds: int, threads: int = 1) -> list[str]:
    """wrk's command line: ``threads`` threads (at most one per connection), ``concurrency``
    connections, ``seconds`` (wrk takes whole seconds), latency statistics, the target's
    script and its arguments."""
    command = [wrk_binary(), f"-t{min(threads, concurrency)}", f"-c{concurrency}"]
    command += [f"-d{seconds}s", f"--timeout={TIMEOUT_S}s", "--latency"]
    script = str(SCRIPTS / f"{target.script}.lua")
    return [*command, "-s", script, target.url, "--", *target.args]


def run_wrk(target: Target, concurrency: int, seconds: int, threads: int = 1) -> dict:
    """One wrk run; its summary (``parse_summary``) plus ``wrk_cpu_s``. Raises WrkFailed
    when wrk fails or the run had failures."""
    before = children_cpu_seconds()
    done = subprocess.run(
        wrk_command(target, concurrency, seconds, threads),
        capture_output=True,
        text=True,
        timeout=seconds + TIMEOUT_S + 30,
        check=False,
    )
    wrk_cpu = children_cpu_seconds() - before  # wrk is the only child waited for meanwhile
    if done.returncode != 0:
        raise WrkFailed(f"wrk exited with {done.returncode}: {done.stderr[-2000:]}{done.stdout}")
    summary = parse_summary(done.stdout)
    problem = failures(summary)
    if problem:
        raise WrkFailed(f"{target.url} at concurrency {concurrency}: {problem}")
    summary["wrk_cpu_s"] = wrk_cpu
    return summary


def measure(
    target: Target, concurrency: int, seconds: int, warmup: int, threads: int = 1
) -> WrkResult:
    """A warm-up run of ``warmup`` s (not counted; none at 0), then the measured run."""
    if warmup > 0:
        run_wrk(target, concurrency, warmup, threads)
    cpu_before = {name: group_cpu_seconds(pgid) for name, pgid in target.watch.items()}
    summary = run_wrk(target, concurrency, seconds, threads)
    cpu_after = {name: group_cpu_seconds(pgid) for name, pgid in target.watch.items()}
    rss = {name: sum(group_rss_mb(pgid).values()) for name, pgid in target.watch.items()}
    return from_summary(summary, concurrency, cpu_before, cpu_after, rss)


def cpu_ms_per_request(
    cpu_before: dict[str, float], cpu_after: dict[str, float], requests: int
) -> dict[str, float]:
    """CPU seconds of each process group before and after a run -> ms per answered request."""
    per_request = 1000 / max(1, requests)
    return {name: per_request * (cpu_after[name] - cpu_before[name]) for name in cpu_before}


def from_summary(
    summary: dict,
    concurrency: int,
    cpu_before: dict[str, float],
    cpu_after: dict[str, float],
    rss_mb: dict[str, float],
) -> WrkResult:
    """A run's summary, the servers' CPU seconds around it and their memory after it -> a
    result."""
    requests = summary["requests"]
    cpu = cpu_ms_per_request(cpu_before, cpu_after, requests)
    cpu[LOAD_GENERATOR] = 1000 * summary["wrk_cpu_s"] / max(1, requests)
    return WrkResult(
        concurrency=concurrency,
        requests=requests,
        duration_s=summary["duration_s"],
        throughput=requests / summary["duration_s"],
        p50_ms=summary["p50_ms"],
        p90_ms=summary["p90_ms"],
        p99_ms=summary["p99_ms"],
        max_ms=summary["max_ms"],
        cpu_ms_per_request=cpu,
        rss_mb=rss_mb,
    )
