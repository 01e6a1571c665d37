"""What the load generator sends, and one closed-loop run measured: medians and CPU per request."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
from brainscan_v2protocol import encode_request
from processes import cpu_seconds, run_json

HERE = Path(__file__).resolve().parent


def request_body(manifest: dict, workdir: Path, name: str = "request") -> tuple[Path, list[str]]:
    """One binary v2 request for one image, as the gateway sends it: the probabilities and,
    from a guarded model, the guard's outputs. Written to ``workdir/<name>.bin``."""
    spec = manifest["input"]
    shape = [1, spec["height"], spec["width"], spec.get("channels", 3)]
    if spec.get("layout") == "NCHW":
        shape = [1, shape[3], shape[1], shape[2]]
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    body, headers = encode_request({spec["name"]: image}, requested_outputs(manifest))
    path = workdir / f"{name}.bin"
    path.write_bytes(body)
    return path, [f"{key}: {value}" for key, value in headers.items()]


def requested_outputs(manifest: dict) -> list[str]:
    """What the gateway asks for on a prediction without an explanation."""
    guard = manifest.get("ood")
    guard_outputs = [guard["score"], guard["cues"]] if guard else []
    return [manifest["outputs"]["probabilities"], *guard_outputs]


def tensor_source(body: Path, headers: list[str]) -> list[str]:
    """loadgen arguments sending ``body`` with ``headers``."""
    source = ["--body", str(body)]
    for header in headers:
        source += ["--header", header]
    return source


LOAD_GENERATOR = "load generator"
"""Key of the client's own CPU time per request in ``cpu_ms_per_request``."""


def load(
    url: str, source: list[str], concurrency: int, opts, watch: dict[str, int] | None = None
) -> dict:
    """Median throughput and latencies over the repeats of one closed-loop run.

    ``source``: the loadgen arguments saying what to send (``--body`` + headers, or ``--upload``).
    ``watch``: server processes (name -> pid) whose CPU time per answered request to report,
    beside the load generator's own (under ``LOAD_GENERATOR``).
    """
    args = [str(HERE / "loadgen.py"), "--url", url, *source]
    args += ["--concurrency", str(concurrency), "--seconds", str(opts.seconds)]
    args += ["--repeats", str(opts.repeats), "--warmup", str(opts.warmup)]
    cpu_before = {name: cpu_seconds(pid) for name, pid in (watch or {}).items()}
    repeats = run_json(args, timeout=opts.warmup + opts.repeats * opts.seconds + 120)
    return summarise_run(
        repeats,
        {name: cpu_seconds(pid) - cpu_before[name] for name, pid in (watch or {}).items()},
    )


def summarise_run(repeats: list[dict], server_cpu_seconds: dict[str, float]) -> dict:
    """loadgen's repeats -> median throughput/p50/p99, failed requests, CPU ms per request.

    CPU is over the whole run (warm-up and tail included) divided by every answer of the run,
    which is what that CPU time was spent on.
    """
    answered = max(1, repeats[-1]["answered_in_run"])
    cpu_ms = {name: 1000 * seconds / answered for name, seconds in server_cpu_seconds.items()}
    if "client_cpu_seconds" in repeats[-1]:
        cpu_ms[LOAD_GENERATOR] = 1000 * repeats[-1]["client_cpu_seconds"] / answered
    result = {
        key: statistics.median(r[key] for r in repeats if r[key] is not None)
        for key in ("throughput", "p50_ms", "p99_ms")
        if any(r[key] is not None for r in repeats)
    }
    result["errors"] = sum(r["errors"] for r in repeats)
    result["cpu_ms_per_request"] = cpu_ms
    return result
