"""`make bench`: the inference service and the gateway against a naive server and the raw
limit, loaded by wrk, and what the out-of-distribution guard costs.

Prints two tables, every figure from this run on this machine, medians over rounds:

1. every system at each concurrency (default 1, 8, 32; closed loop, wrk, one connection per
   concurrent client):

   - raw onnxruntime in-process, batch 1 and 32 with 1 and 2 intra-op threads: the limit is
     the best of them;
   - the naive baseline (``naive_server.py``: FastAPI, a sync route, one session.run per
     request in the thread pool, raw uint8 pixels in, JSON out, one intra-op thread);
   - the inference service, a binary v2 request (``brainscan_v2protocol.encode_request``);
   - the gateway end to end: a 512x512 JPEG upload (a generated MRI-like slice) as a
     multipart form: decode, resize, the binary v2 call to inference, thresholds, JSON;

   with requests/s, p50 and p99 (wrk's), the servers' CPU milliseconds per request and
   resident memory per process (from /proc, each server's process group), wrk's own CPU per
   request, and the ratios to the naive server at the same concurrency and to the raw limit;
2. the guard's cost (guard_cost.py): the same model without its guard is served beside it (an
   inference service and a gateway each) and loaded in the same rounds, the two packages in
   turn; raw onnxruntime at batch 1 and 8 likewise; then the ratios guarded / unguarded.

In each round every concurrency is loaded on every system in turn (the guarded and unguarded
packages in an order reversed every round), one window each: a warm-up run of wrk, then the
measured run. Any answer that is not 2xx fails the bench. ``--reference-model`` serves
MobileNetV2 alpha 1.0 at 224 px instead (~6x the arithmetic of the project's alpha 0.35 at
128 px). The servers run in process groups of their own on free ports, stopped whatever
happens; wrk and every server share this machine; nothing else should run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import guard_cost
import httpx
import numpy as np
import shadow_cost
import wrk_load
from brainscan_inference.settings import InferenceSettings
from compare_settings import round_order
from guard_cost import GATEWAY, GUARDED, INFERENCE, UNGUARDED, median_result
from processes import free_port, gateway_env, inference_env, log, memory_mb, run_json, server
from workload import raw_body, request_body, upload_body

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

NAIVE = "naive"
UPLOAD_SIDE = 512
SYSTEMS = {
    NAIVE: "naive FastAPI + onnxruntime (baseline)",
    INFERENCE: "inference, HTTP v2 binary",
    GATEWAY: f"gateway end to end, {UPLOAD_SIDE}×{UPLOAD_SIDE} JPEG upload",
}
RAW = "raw onnxruntime, in-process"


def upload_image(workdir: Path) -> Path:
    """A generated MRI-like slice (a glioma), UPLOAD_SIDE px square, as an RGB JPEG.

    RGB because the Kaggle data set's JPEGs are grey pictures stored with three channels.
    """
    from brainscan_synthetic_mri.synthetic import render_example
    from PIL import Image

    rendered = render_example("glioma", np.random.default_rng(5), image_size=UPLOAD_SIDE)
    path = workdir / "slice.jpg"
    Image.fromarray(rendered.image).convert("RGB").save(path, format="JPEG", quality=90)
    return path


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def per_process(values: dict[str, float], digits: int) -> str:
    """``total (a x · b y)`` for several processes, the figure alone for one."""
    if not values:
        return "—"
    total = f"{sum(values.values()):,.{digits}f}"
    if len(values) == 1:
        return total
    return total + " (" + " · ".join(f"{n} {v:,.{digits}f}" for n, v in values.items()) + ")"


def raw_limit(raw_runs: dict[str, dict]) -> float:
    """The best raw images/s under ANY thread setting, not only the service's: a setting that
    slows raw onnxruntime must not lower the bar the servers are measured against."""
    return max(
        statistics.median(values)
        for raw in raw_runs.values()
        for values in raw["throughput"].values()
    )


def table(raw_runs: dict[str, dict], systems: dict[str, dict[int, dict]], info: dict) -> str:
    """``systems[path][concurrency]``: median results (guard_cost.median_result) of NAIVE,
    INFERENCE and GATEWAY, each present or not."""
    limit = raw_limit(raw_runs)
    rows = [
        "| system | load | req/s | p50 ms | p99 ms | server CPU ms/req | wrk CPU ms/req "
        "| RSS MB | × naive | × raw limit |",
        "|---|---|---:|---:|---:|---|---:|---|---:|---:|",
    ]
    for threads, raw in raw_runs.items():
        for batch, values in raw["throughput"].items():
            throughput = statistics.median(values)
            cpu = statistics.median(raw["cpu_ms_per_image"][batch])
            rows.append(
                f"| {RAW}, {threads} | batch {batch} | {fmt(throughput)} img/s "
                f"| {1000 * int(batch) / throughput:.2f} per call | — | {cpu:.2f} per image | — "
                f"| — | — | {throughput / limit:.2f} |"
            )
    naive = systems.get(NAIVE, {})
    for path, label in SYSTEMS.items():
        for concurrency, result in systems.get(path, {}).items():
            throughput = result.get("throughput", 0.0)
            baseline = naive.get(concurrency, {}).get("throughput")
            servers = {
                name: ms
                for name, ms in result["cpu_ms_per_request"].items()
                if name != wrk_load.LOAD_GENERATOR
            }
            rows.append(
                f"| {label} | concurrency {concurrency} | {fmt(throughput)} | "
                f"{fmt(result.get('p50_ms'), 2)} | {fmt(result.get('p99_ms'), 2)} | "
                f"{per_process(servers, 2)} | "
                f"{result['cpu_ms_per_request'].get(wrk_load.LOAD_GENERATOR, 0.0):.3f} | "
                f"{per_process(result.get('rss_mb', {}), 0)} | "
                f"{fmt(throughput / baseline if baseline else None, 2)} | "
                f"{throughput / limit:.2f} |"
            )
    return header(info) + "\n\n" + "\n".join(rows)


def header(info: dict) -> str:
    guard = f"Guard: {info['guard_origin']}. " if "guard_origin" in info else ""
    started = info.get("started", "")
    return (
        f"Model: {info['model']}. ONNX {info['onnx_origin']}. {guard}"
        f"{started}{os.cpu_count()} CPUs, wrk and every server on the same machine. "
        "Medians over rounds, one window per system and concurrency in each (wrk closed loop, "
        "one connection per concurrent client, every answer 2xx); latencies are wrk's; "
        "server CPU ms/req: the CPU time of each server's process group (all threads, from "
        "/proc) over the measured run divided by the requests answered in it, the total and "
        "each server (the gateway rows include the inference service behind it); wrk CPU "
        "ms/req: wrk's own; RSS: each server's resident memory after the run; × naive: req/s "
        "over the naive server's at the same concurrency; × raw limit: req/s (raw rows: "
        "images/s) over the best raw images/s."
    )


RAW_THREADS = (1, 2)
"""Intra-op threads of the raw runs (the limit is the best of them)."""
RAW_BATCHES = ("1", "32")


def raw_thread_settings() -> dict[str, int]:
    """The raw runs by label, the service's own setting marked."""
    configured = InferenceSettings().intra_op_threads
    return {
        f"{threads} thread{'s' * (threads > 1)}{' (service)' * (threads == configured)}": threads
        for threads in RAW_THREADS
    }


GUARD_BATCHES = ("1", "8")
"""Raw onnxruntime batch sizes measured with and without the guard."""


@dataclass(frozen=True)
class Served:
    """One package being served: its inference service and, unless skipped, a gateway."""

    inference_pid: int
    infer_url: str
    gateway_pid: int | None = None
    predict_url: str | None = None


def serve(
    stack: ExitStack, name: str, package: Path, model_name: str, workdir: Path, gateway: bool
) -> Served:
    """Start ``package``'s inference service (and a gateway in front of it) on free ports;
    ``stack`` stops them whatever happens."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    inference = stack.enter_context(
        server(
            ["-m", "brainscan_inference"],
            inference_env(package, port),
            f"{base}/v2/health/ready",
            workdir / f"inference-{name}.log",
            timeout=120,
        )
    )
    infer_url = f"{base}/v2/models/{model_name}/infer"
    if not gateway:
        return Served(inference.pid, infer_url)
    gateway_port = free_port()
    gateway_base = f"http://127.0.0.1:{gateway_port}"
    process = stack.enter_context(
        server(
            ["-m", "brainscan_gateway"],
            gateway_env(base, model_name, gateway_port),
            f"{gateway_base}/readyz",
            workdir / f"gateway-{name}.log",
            timeout=120,
        )
    )
    return Served(inference.pid, infer_url, process.pid, f"{gateway_base}/api/v1/predictions")


def serve_shadow(
    stack: ExitStack, package: Path, model_name: str, workdir: Path
) -> dict[str, Served]:
    """``package`` served with a copy of itself as the challenger in shadow, and two gateways
    in front: one mirroring every answer to it, one mirroring nothing (shadow_cost.py)."""
    challenger = workdir / "challenger"
    shutil.copytree(package, challenger / "shadow-copy", dirs_exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    inference = stack.enter_context(
        server(
            ["-m", "brainscan_inference"],
            inference_env(package, port, INFERENCE_CHALLENGER_DIR=str(challenger)),
            f"{base}/v2/health/ready",
            workdir / "inference-shadow.log",
            timeout=120,
        )
    )
    served = {}
    for name, fraction in ((shadow_cost.SHADOW_ON, "1"), (shadow_cost.SHADOW_OFF, "0")):
        gateway_port = free_port()
        gateway_base = f"http://127.0.0.1:{gateway_port}"
        settings = {"GATEWAY_SHADOW_FRACTION": fraction, "GATEWAY_SHADOW_REFRESH_SECONDS": "1"}
        process = stack.enter_context(
            server(
                ["-m", "brainscan_gateway"],
                gateway_env(base, model_name, gateway_port, **settings),
                f"{gateway_base}/readyz",
                workdir / f"gateway-{name.replace(' ', '-')}.log",
                timeout=120,
            )
        )
        infer_url = f"{base}/v2/models/{model_name}/infer"
        url = f"{gateway_base}/api/v1/predictions"
        served[name] = Served(inference.pid, infer_url, process.pid, url)
    wait_for_mirroring(served[shadow_cost.SHADOW_ON].predict_url)
    return served


def mirror_figures(predict_url: str) -> dict | None:
    """The shadow figures of the gateway behind ``predict_url`` (None: no challenger)."""
    model_url = predict_url.replace("/predictions", "/model")
    return httpx.get(model_url, timeout=10).json()["shadow"]


def wait_for_mirroring(predict_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while mirror_figures(predict_url) is None:
        if time.monotonic() > deadline:
            raise SystemExit("[bench] FAILED: the shadow-on gateway never saw the challenger")
        time.sleep(0.5)


def shadow_header(opts) -> str:
    return (
        "Cost of shadowing: the served package again, its inference service holding a copy as "
        "the challenger in shadow, behind two gateways loaded by wrk in the same rounds, in "
        "turn, the order reversed every round: one mirroring every answered prediction to the "
        "challenger (GATEWAY_SHADOW_FRACTION=1), one not (0). Medians over "
        f"{opts.repeats} rounds of one {opts.duration} s window after {opts.warmup} s of "
        "warm-up; servers' CPU is gateway + inference (the challenger's work included)."
    )


def serve_naive(stack: ExitStack, package: Path, workdir: Path) -> tuple[int, str]:
    """The naive baseline on ``package``: its pid and its /predict URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = stack.enter_context(
        server(
            [str(HERE / "naive_server.py"), "--package", str(package), "--port", str(port)],
            dict(os.environ),
            f"{base}/ready",
            workdir / "naive.log",
            timeout=120,
        )
    )
    return process.pid, f"{base}/predict"


def measure_rounds(
    targets_by: dict[str, dict[str, wrk_load.Target]], opts
) -> dict[str, dict[str, dict[int, list[dict]]]]:
    """``opts.repeats`` rounds of one window per package, path and concurrency: within a
    round, per concurrency, each path (NAIVE, INFERENCE, GATEWAY) on each package that has it,
    the packages in an order reversed every round. ``results[package][path][concurrency]``:
    one result (``WrkResult`` as a dict) per round."""
    names = list(targets_by)
    paths = [p for p in (NAIVE, INFERENCE, GATEWAY) if any(p in t for t in targets_by.values())]
    results = {
        n: {p: {c: [] for c in opts.concurrency} for p in paths if p in targets_by[n]}
        for n in names
    }
    for round_index in range(opts.repeats):
        for concurrency in opts.concurrency:
            for path in paths:
                for name in round_order(names, round_index):
                    if path not in targets_by[name]:
                        continue
                    log(f"round {round_index + 1}/{opts.repeats}: {name}, {path}, c={concurrency}")
                    result = wrk_load.measure(
                        targets_by[name][path],
                        concurrency,
                        opts.duration,
                        opts.warmup,
                        opts.wrk_threads,
                    )
                    results[name][path][concurrency].append(dataclasses.asdict(result))
    return results


def measure_raw_pair(packages: dict[str, Path], opts) -> dict[str, dict[str, list[tuple]]]:
    """Raw onnxruntime with the service's settings on each package in turn, a window per
    round and batch: ``raw[package][batch]`` = (images/s, CPU ms per image) per round."""
    raw: dict[str, dict[str, list[tuple]]] = {name: {} for name in packages}
    window = ["--seconds", str(raw_seconds(opts)), "--repeats", "1"]
    for round_index in range(opts.repeats):
        for name in round_order(list(packages), round_index):
            log(f"round {round_index + 1}/{opts.repeats}: {name}, raw onnxruntime")
            script = [str(HERE / "raw_onnxruntime.py"), "--package", str(packages[name])]
            measured = run_json([*script, *window, "--batches", *GUARD_BATCHES], timeout=300)
            for batch, values in measured["throughput"].items():
                cpu = measured["cpu_ms_per_image"][batch][0]
                raw[name].setdefault(batch, []).append((values[0], cpu))
    return raw


def raw_seconds(opts) -> float:
    """A raw window: half an HTTP one (raw calls vary far less), at least a second."""
    return max(1.0, opts.duration / 2)


def guard_header(info: dict, opts) -> str:
    return (
        f"Cost of the out-of-distribution guard: the served package ({info['onnx_origin']}; "
        f"guard: {info['guard_origin']}) against the same model without it "
        f"({info['plain_origin']}). Each served at once by its own inference service with a "
        "gateway in front, loaded by wrk in the same rounds as the table above, the two "
        f"packages in turn, the order reversed every round; medians over {opts.repeats} "
        f"rounds of one {opts.duration} s window after {opts.warmup} s of warm-up. Ratio "
        "rows: guarded / unguarded of each median; their CPU is the servers' per request "
        "(gateway + inference, wrk left out), with the range of the per-round ratios (each "
        "round measures both packages back to back). Target (issue 12): at most "
        f"{guard_cost.CPU_TARGET:.2f} × the CPU per prediction on the gateway path."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument(
        "--duration",
        type=int,
        default=int(os.environ.get("BENCH_DURATION", 4)),
        help="seconds of each measured wrk run, whole (env BENCH_DURATION; default 4)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=int(os.environ.get("BENCH_ROUNDS", 3)),
        help="rounds, see above (env BENCH_ROUNDS; default 3)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=int(os.environ.get("BENCH_WARMUP", 1)),
        help="seconds of wrk before each measured run (env BENCH_WARMUP; default 1)",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk threads (at most the connections)"
    )
    parser.add_argument("--skip-gateway", action="store_true", help="leave the gateway out")
    parser.add_argument(
        "--skip-shadow", action="store_true", help="leave out the cost of shadowing"
    )
    parser.add_argument(
        "--quick", action="store_true", help="one round of 1 s windows, no warm-up (smoke test)"
    )
    parser.add_argument(
        "--reference-model",
        action="store_true",
        help="serve the model size the serving targets assume (MobileNetV2 alpha 1.0, 224 px, "
        "built untrained by brainscan_training) instead of the project's",
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=REPO / "artifacts",
        help="the pipeline's output to bench (export/ and package/; default: this checkout's)",
    )
    parser.add_argument("--package", type=Path, help="bench this model package instead")
    parser.add_argument(
        "--plain-package",
        type=Path,
        help="the same model without its guard, to measure the guard's cost against (alone: "
        "served against itself with a guard fitted by the bench)",
    )
    opts = parser.parse_args()
    if opts.reference_model and (opts.package or opts.plain_package):
        parser.error("--reference-model and --package/--plain-package name different models")
    if opts.quick:
        opts.duration, opts.repeats, opts.warmup = 1, 1, 0
    if opts.duration < 1 or opts.warmup < 0 or opts.repeats < 1:
        parser.error("--duration and --repeats must be at least 1 and --warmup not negative")
    wrk_load.wrk_binary()  # fail before building anything when wrk is missing

    with tempfile.TemporaryDirectory(prefix="brainscan-bench-") as scratch, ExitStack() as stack:
        workdir = opts.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        load_before = os.getloadavg()[0]
        started = time.strftime("%Y-%m-%d %H:%M")
        log("preparing the models (builds, exports and guards one if the pipeline has not)")
        prepare = [str(HERE / "prepare_model.py"), "--artifacts", str(opts.artifacts.resolve())]
        prepare += ["--workdir", str(workdir)]
        if opts.reference_model:
            prepare.append("--reference")
        for option, value in (("--package", opts.package), ("--plain-package", opts.plain_package)):
            if value is not None:
                prepare += [option, str(value.resolve())]
        info = run_json(prepare, timeout=900)
        info["started"] = f"Run {started}, load average {load_before:.2f} before it. "
        log(f"model: {info['model']}")
        packages = {GUARDED if "guard_origin" in info else "served": Path(info["package_dir"])}
        if "plain_package_dir" in info:
            packages[UNGUARDED] = Path(info["plain_package_dir"])
        manifests = {
            name: json.loads((package / "manifest.json").read_text())
            for name, package in packages.items()
        }
        served_first = next(iter(packages))

        raw_runs = {}
        for threads, intra_op in raw_thread_settings().items():
            log(f"raw onnxruntime in-process, {threads}")
            raw_runs[threads] = run_json(
                [
                    str(HERE / "raw_onnxruntime.py"),
                    "--package",
                    str(packages[served_first]),
                    "--seconds",
                    str(raw_seconds(opts)),
                    "--repeats",
                    str(opts.repeats),
                    "--batches",
                    *RAW_BATCHES,
                ],
                timeout=600,
                env={**os.environ, "INFERENCE_INTRA_OP_THREADS": str(intra_op)},
            )

        upload = upload_body(upload_image(workdir), workdir)
        targets_by: dict[str, dict[str, wrk_load.Target]] = {}
        served = {}
        for name, package in packages.items():
            manifest = manifests[name]
            s = serve(stack, name, package, manifest["name"], workdir, not opts.skip_gateway)
            served[name] = s
            body, header_length = request_body(manifest, workdir, f"request-{name}")
            targets_by[name] = {
                INFERENCE: wrk_load.v2_target(
                    s.infer_url, body, header_length, {"inference": s.inference_pid}
                )
            }
            if s.predict_url:
                targets_by[name][GATEWAY] = wrk_load.multipart_target(
                    s.predict_url, upload, {"gateway": s.gateway_pid, "inference": s.inference_pid}
                )
        shadow = {}
        if not opts.skip_gateway and not opts.skip_shadow:
            manifest = manifests[served_first]
            shadow = serve_shadow(stack, packages[served_first], manifest["name"], workdir)
            for name, s in shadow.items():
                targets_by[name] = {
                    GATEWAY: wrk_load.multipart_target(
                        s.predict_url,
                        upload,
                        {"gateway": s.gateway_pid, "inference": s.inference_pid},
                    )
                }
        naive_pid, naive_url = serve_naive(stack, packages[served_first], workdir)
        targets_by[served_first][NAIVE] = wrk_load.raw_target(
            naive_url, raw_body(manifests[served_first], workdir), {"naive": naive_pid}
        )

        try:
            results = measure_rounds(targets_by, opts)
        except wrk_load.WrkFailed as failure:
            for server_log in sorted(workdir.glob("*.log")):
                tail = server_log.read_text(errors="replace").splitlines()[-5:]
                log(f"{server_log.name}, last lines:\n" + "\n".join(tail))
            raise SystemExit(f"[bench] FAILED: {failure}") from None
        mirror = mirror_figures(shadow[shadow_cost.SHADOW_ON].predict_url) if shadow else None
        memory_of = {
            name: {
                "inference service": memory_mb(s.inference_pid),
                **({"gateway": memory_mb(s.gateway_pid)} if s.gateway_pid else {}),
            }
            for name, s in served.items()
        }
        stack.close()  # the servers: not to share the cores with the rest
        raw_pair = measure_raw_pair(packages, opts) if len(packages) > 1 else {}

        systems = {
            path: {c: median_result(samples) for c, samples in per_concurrency.items()}
            for path, per_concurrency in results[served_first].items()
        }
        output = table(raw_runs, systems, info)
        if len(packages) > 1:
            setups = {GATEWAY: SYSTEMS[GATEWAY], INFERENCE: SYSTEMS[INFERENCE]}
            guard = guard_cost.table(results, raw_pair, memory_of, setups, guard_header(info, opts))
            output += "\n\n" + guard
        if shadow:
            output += "\n\n" + shadow_cost.table(
                {name: results[name] for name in shadow}, mirror, shadow_header(opts)
            )
        sys.stdout.write(output + "\n")


if __name__ == "__main__":
    main()
