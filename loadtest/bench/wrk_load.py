"""One closed-loop load window driven by wrk, and what it cost the servers, from /proc.

wrk (C, epoll, one static request per connection, no Lua per request) keeps ``concurrency``
connections busy: each sends its next request when the last is answered. Its Lua scripts
(``wrk/``) only build the request once and print the summary as a JSON line (``report.lua``).
A window is a warm-up run, not counted, then the measured run; around the measured run the CPU
time of each watched server's process tree (the process and its descendants, all threads) is
read from /proc, and wrk's own CPU from the kernel's account of waited-for children, each
divided by the requests answered in the run. The servers' resident memory is read at its end.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from processes import cpu_seconds, log, memory_mb

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "wrk"
LOAD_GENERATOR = "wrk"
"""Key of the client's own CPU time per request in ``cpu_ms_per_request``."""
TIMEOUT_S = 30
"""wrk's per-request timeout (its default, 2 s, would count a slow answer as an error)."""


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (Debian package wrk)")
    return found


@dataclass(frozen=True)
class Target:
    """What a window sends where, and which server processes (name -> pid) it costs."""

    url: str
    script: str
    """A script of ``wrk/`` without ``.lua``: ``v2``, ``raw`` or ``multipart``."""
    args: tuple[str, ...]
    """The script's arguments: the body's file first."""
    watch: dict[str, int] = field(default_factory=dict)


def v2_target(url: str, body: Path, header_length: int, watch: dict[str, int]) -> Target:
    return Target(url, "v2", (str(body), str(header_length)), watch)


def raw_target(url: str, body: Path, watch: dict[str, int]) -> Target:
    return Target(url, "raw", (str(body),), watch)


def multipart_target(url: str, body: Path, watch: dict[str, int]) -> Target:
    return Target(url, "multipart", (str(body),), watch)


@dataclass(frozen=True)
class WrkResult:
    """One measured run. Latencies are wrk's over every response (errors too), in ms;
    ``throughput`` counts only answers below 400 (wrk's ``errors.status`` counts the rest)."""

    concurrency: int
    requests: int
    errors: int
    """Answers with a status >= 400, and socket errors (connect, read, write, timeout)."""
    duration_s: float
    throughput: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    cpu_ms_per_request: dict[str, float]
    """Each watched server's process tree, then wrk's (``LOAD_GENERATOR``)."""
    rss_mb: dict[str, float]
    """Each watched server's process tree, resident memory at the end of the run."""


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from the parent pids in /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, stack = [], [pid]
    while stack:
        current = stack.pop()
        tree.append(current)
        stack.extend(children.get(current, []))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for member in descendants(pid):
        try:
            total += cpu_seconds(member)
        except OSError:
            pass
    return total


def tree_rss_mb(pid: int) -> float:
    total = 0.0
    for member in descendants(pid):
        try:
            total += memory_mb(member)[0]
        except (OSError, KeyError):
            pass
    return total


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(target: Target, concurrency: int, seconds: int, threads: int = 1) -> dict:
    """One wrk run of ``seconds`` (wrk counts whole seconds); its JSON summary (see
    ``wrk/report.lua``) plus ``wrk_cpu_s``."""
    command = [wrk_binary(), f"-t{min(threads, concurrency)}", f"-c{concurrency}"]
    command += [f"-d{seconds}s", f"--timeout={TIMEOUT_S}s"]
    command += ["-s", str(SCRIPTS / f"{target.script}.lua"), target.url, "--", *target.args]
    before = children_cpu_seconds()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + TIMEOUT_S + 30, check=False
    )
    wrk_cpu = children_cpu_seconds() - before  # wrk is the only child waited for meanwhile
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}{done.stdout}")
    summary = json.loads(lines[-1])
    summary["wrk_cpu_s"] = wrk_cpu
    return summary


def measure(
    target: Target, concurrency: int, seconds: int, warmup: int, threads: int = 1
) -> WrkResult:
    """A warm-up run (not counted) and a measured run of ``seconds`` at ``concurrency``."""
    if warmup > 0:
        run_wrk(target, concurrency, warmup, threads)
    cpu_before = {name: tree_cpu_seconds(pid) for name, pid in target.watch.items()}
    summary = run_wrk(target, concurrency, seconds, threads)
    cpu_after = {name: tree_cpu_seconds(pid) for name, pid in target.watch.items()}
    rss = {name: tree_rss_mb(pid) for name, pid in target.watch.items()}
    result = from_summary(summary, concurrency, cpu_before, cpu_after, rss)
    if result.errors:
        log(f"{target.url} at concurrency {concurrency}: {result.errors} errors ({summary})")
    return result


def from_summary(
    summary: dict,
    concurrency: int,
    cpu_before: dict[str, float],
    cpu_after: dict[str, float],
    rss_mb: dict[str, float],
) -> WrkResult:
    """wrk's JSON summary, the servers' CPU seconds around the run and their memory after it
    -> a result."""
    requests = summary["requests"]
    per_request = 1000 / max(1, requests)
    cpu = {name: per_request * (cpu_after[name] - cpu_before[name]) for name in cpu_before}
    cpu[LOAD_GENERATOR] = per_request * summary["wrk_cpu_s"]
    answered = requests > 0
    return WrkResult(
        concurrency=concurrency,
        requests=requests,
        errors=summary["errors"],
        duration_s=summary["duration_s"],
        throughput=(requests - summary["status_errors"]) / summary["duration_s"],
        p50_ms=summary["p50_ms"] if answered else None,
        p90_ms=summary["p90_ms"] if answered else None,
        p99_ms=summary["p99_ms"] if answered else None,
        max_ms=summary["max_ms"] if answered else None,
        cpu_ms_per_request=cpu,
        rss_mb=rss_mb,
    )
