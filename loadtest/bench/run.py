"""`make bench`: the inference service against its limit and against the design it replaces,
and what its out-of-distribution guard costs.

Prints two tables, every figure from this run on this machine, medians over repeated windows.
The first, of the served package (the guarded one, see prepare_model.py):

- raw onnxruntime in-process (batch 1, 8, 32): the limit;
- the service over loopback, binary tensors, concurrency 1, 8, 32;
- the gateway end to end in front of that service: 512x512 JPEG uploads (a generated MRI-like
  slice) as multipart forms, concurrency 1, 8, 32: decode, resize, a second HTTP hop, thresholds;
- a Flask app calling Keras ``model.predict`` per request (the original design), same client;
- the service's and the gateway's resident memory, after the load;
- CPU milliseconds per request of every process involved (server and load generator), from
  /proc: a figure a shared machine moves far less than throughput.

The second, the guard's cost (guard_cost.py): the same model without its guard is served beside
it (an inference service and a gateway each) and the HTTP windows run in rounds, the two
packages in turn, the order reversed every round; raw onnxruntime at batch 1 and 8 likewise;
then the ratios guarded / unguarded, CPU per prediction on the gateway path against its target.

``--reference-model`` serves the model size the serving targets were set with (MobileNetV2 alpha
1.0 at 224 px, ~6x the arithmetic of the project's alpha 0.35 at 128 px) instead: per-request
costs that do not depend on the model weigh ~6x less in its ratios.

Each server and the load generator run in their own processes; nothing else should run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import guard_cost
import numpy as np
from brainscan_inference.settings import InferenceSettings
from compare_settings import round_order
from guard_cost import GATEWAY, GUARDED, INFERENCE, UNGUARDED, median_result
from processes import free_port, gateway_env, inference_env, log, memory_mb, run_json, server
from workload import LOAD_GENERATOR, load, request_body, tensor_source

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Peers measured on this machine with the reference model and the same client: the serving targets.
BENTOML_THROUGHPUT = 130.0
BENTOML_P99_AT_32_MS = 360.0
MEMORY_LIMIT_MB = 300.0
# Targets for the gateway at concurrency 8.
GATEWAY_SHARE_OF_LIMIT = 0.4
GATEWAY_P99_MS = 150.0
UPLOAD_SIDE = 512


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


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def cpu_cell(cpu_ms: dict[str, float]) -> str:
    """CPU milliseconds per answered request of each process, the load generator last."""
    names = [n for n in cpu_ms if n != LOAD_GENERATOR] + [n for n in cpu_ms if n == LOAD_GENERATOR]
    return " · ".join(f"{name} {cpu_ms[name]:.2f}" for name in names)


def table(
    raw_runs: dict[str, dict],
    service: dict,
    gateway: dict,
    flask: dict,
    memory: dict[str, tuple[float, float]],
    info: dict,
) -> str:
    # The limit is the best raw figure under ANY thread setting, not only the service's: a
    # service setting that slows raw onnxruntime must not lower the bar it is measured against.
    limit = max(
        statistics.median(values)
        for raw in raw_runs.values()
        for values in raw["throughput"].values()
    )
    service_raw = next(iter(raw_runs.values()))  # the first run uses the service's settings
    raw_b1_ms = 1000 / statistics.median(service_raw["throughput"]["1"])
    rows = [
        "| setup | load | images/s | p50 ms | p99 ms | CPU ms per request | × raw limit "
        "| × Flask+Keras | targets |",
        "|---|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for threads, raw in raw_runs.items():
        for batch, values in raw["throughput"].items():
            throughput = statistics.median(values)
            call_ms = 1000 * int(batch) / throughput
            cpu = statistics.median(raw["cpu_ms_per_image"][batch])
            rows.append(
                f"| raw onnxruntime, in-process | batch {batch}, {threads} | {fmt(throughput)} "
                f"| {fmt(call_ms, 2)} | — | {cpu:.2f} per image | {throughput / limit:.2f} | — "
                "| one call per batch |"
            )
    for concurrency, result in service.items():
        throughput = result.get("throughput", 0.0)
        baseline = flask.get(concurrency, {}).get("throughput")
        versus_flask = throughput / baseline if baseline else None
        notes = []
        if concurrency == 1:
            gap = result["p50_ms"] - raw_b1_ms
            notes.append(f"p50 − raw batch-1 call = {gap:+.2f} ms (≤ 2: {mark(gap <= 2)})")
        if concurrency == 8:
            notes.append(f"≥ 0.75 × limit: {mark(throughput >= 0.75 * limit)}")
        if concurrency in (8, 32):
            notes.append(
                f"≥ 1.5 × BentoML {BENTOML_THROUGHPUT:.0f}/s: "
                f"{mark(throughput >= 1.5 * BENTOML_THROUGHPUT)}"
            )
        if concurrency == 32:
            notes.append(
                f"p99 < BentoML {BENTOML_P99_AT_32_MS:.0f} ms: "
                f"{mark(result['p99_ms'] < BENTOML_P99_AT_32_MS)}"
            )
        if versus_flask is not None:
            notes.append(f"≥ 10 × Flask+Keras: {mark(versus_flask >= 10)}")
        if result["errors"]:
            notes.append(f"{result['errors']} failed requests")
        rows.append(
            f"| inference service, HTTP binary | concurrency {concurrency} | {fmt(throughput)} | "
            f"{fmt(result.get('p50_ms'), 2)} | {fmt(result.get('p99_ms'), 2)} | "
            f"{cpu_cell(result['cpu_ms_per_request'])} | "
            f"{throughput / limit:.2f} | {fmt(versus_flask)} | {'; '.join(notes)} |"
        )
    for concurrency, result in gateway.items():
        throughput = result.get("throughput", 0.0)
        notes = []
        if concurrency == 8:
            share_met = throughput / limit >= GATEWAY_SHARE_OF_LIMIT
            p99 = result.get("p99_ms")
            p99_met = p99 is not None and p99 <= GATEWAY_P99_MS
            notes.append(f"≥ {GATEWAY_SHARE_OF_LIMIT} × limit: {mark(share_met)}")
            notes.append(f"p99 ≤ {GATEWAY_P99_MS:.0f} ms: {mark(p99_met)}")
            notes.append(
                f"≥ BentoML {BENTOML_THROUGHPUT:.0f}/s on bare tensors: "
                f"{mark(throughput >= BENTOML_THROUGHPUT)}"
            )
        if result["errors"]:
            notes.append(f"{result['errors']} failed requests")
        rows.append(
            f"| gateway end to end, {UPLOAD_SIDE}×{UPLOAD_SIDE} JPEG upload | concurrency "
            f"{concurrency} | {fmt(throughput)} | {fmt(result.get('p50_ms'), 2)} | "
            f"{fmt(result.get('p99_ms'), 2)} | {cpu_cell(result['cpu_ms_per_request'])} | "
            f"{throughput / limit:.2f} | — | {'; '.join(notes)} |"
        )
    for concurrency, result in flask.items():
        throughput = result.get("throughput", 0.0)
        notes = f"{result['errors']} failed requests" if result["errors"] else ""
        rows.append(
            f"| Flask + Keras predict (baseline) | concurrency {concurrency} | {fmt(throughput)} | "
            f"{fmt(result.get('p50_ms'), 2)} | {fmt(result.get('p99_ms'), 2)} | "
            f"{cpu_cell(result['cpu_ms_per_request'])} | {throughput / limit:.2f} | 1.00 "
            f"| {notes} |"
        )
    rss, peak = memory["inference"]
    rows.append(
        "| inference service, resident memory | one model, after the load | — | — | — | — | — "
        f"| — | RSS {rss:.0f} MB, peak {peak:.0f} MB (≤ {MEMORY_LIMIT_MB:.0f}: "
        f"{mark(peak <= MEMORY_LIMIT_MB)}) |"
    )
    if "gateway" in memory:
        rss, peak = memory["gateway"]
        rows.append(
            "| gateway, resident memory | after the load | — | — | — | — | — | — | "
            f"RSS {rss:.0f} MB, peak {peak:.0f} MB |"
        )
    guard = f"Guard: {info['guard_origin']}. " if "guard_origin" in info else ""
    header = (
        f"Model: {info['model']}. ONNX {info['onnx_origin']}; Keras {info['keras_origin']}. "
        f"{guard}"
        f"{os.cpu_count()} CPUs, load generator on the same machine. "
        "Medians over repeats (HTTP rows: one window per round); images/s = requests/s for the "
        "HTTP rows (one image per request); "
        "CPU ms per request: each process's CPU time (all threads, from /proc) over the run "
        "divided by the requests it answered (raw rows: the process per image); "
        "the gateway rows include the inference service behind it, on the same cores."
    )
    return header + "\n\n" + "\n".join(rows)


def raw_thread_settings() -> dict[str, int]:
    """The raw runs: the service's intra-op threads first, then one thread and a thread per
    usable CPU where they differ from it (the limit is the best of them)."""

    def describe(threads: int) -> str:
        return "a thread per CPU" if threads == 0 else f"{threads} thread{'s' * (threads > 1)}"

    configured = InferenceSettings().intra_op_threads
    runs = {f"{describe(configured)} (service)": configured}
    for threads in (1, 0):
        if threads != configured:
            runs[describe(threads)] = threads
    return runs


GATEWAY_SETUP = f"gateway end to end, {UPLOAD_SIDE}×{UPLOAD_SIDE} JPEG upload"
INFERENCE_SETUP = "inference service, HTTP binary"
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


def measure_rounds(
    served: dict[str, Served], tensors: dict[str, list[str]], upload: Path, opts
) -> dict[str, dict[str, dict[int, list[dict]]]]:
    """``opts.repeats`` rounds of one window per package, path and concurrency, the packages
    in turn (order reversed every round): ``results[package][path][concurrency]``."""
    names = list(served)
    paths = [INFERENCE] + ([GATEWAY] if served[names[0]].predict_url else [])
    window = argparse.Namespace(**{**vars(opts), "repeats": 1})
    results = {n: {p: {c: [] for c in opts.concurrency} for p in paths} for n in names}
    for round_index in range(opts.repeats):
        for concurrency in opts.concurrency:
            for path in paths:
                for name in round_order(names, round_index):
                    log(f"round {round_index + 1}/{opts.repeats}: {name}, {path}, "
                        f"concurrency {concurrency}")  # fmt: skip
                    s = served[name]
                    if path == INFERENCE:
                        url, source = s.infer_url, tensors[name]
                        watch = {"inference": s.inference_pid}
                    else:
                        url, source = s.predict_url, ["--upload", str(upload)]
                        watch = {"gateway": s.gateway_pid, "inference": s.inference_pid}
                    results[name][path][concurrency].append(
                        load(url, source, concurrency, window, watch)
                    )
    return results


def measure_raw_pair(packages: dict[str, Path], opts) -> dict[str, dict[str, list[tuple]]]:
    """Raw onnxruntime with the service's settings on each package in turn, a window per
    round and batch: ``raw[package][batch]`` = (images/s, CPU ms per image) per round."""
    raw: dict[str, dict[str, list[tuple]]] = {name: {} for name in packages}
    window = ["--seconds", str(max(1.0, opts.seconds / 2)), "--repeats", "1"]
    for round_index in range(opts.repeats):
        for name in round_order(list(packages), round_index):
            log(f"round {round_index + 1}/{opts.repeats}: {name}, raw onnxruntime")
            script = [str(HERE / "raw_onnxruntime.py"), "--package", str(packages[name])]
            measured = run_json([*script, *window, "--batches", *GUARD_BATCHES], timeout=300)
            for batch, values in measured["throughput"].items():
                cpu = measured["cpu_ms_per_image"][batch][0]
                raw[name].setdefault(batch, []).append((values[0], cpu))
    return raw


def guard_header(info: dict, opts) -> str:
    return (
        f"Cost of the out-of-distribution guard: the served package ({info['onnx_origin']}; "
        f"guard: {info['guard_origin']}) against the same model without it "
        f"({info['plain_origin']}). Each served at once by its own inference service with a "
        "gateway in front, loaded in turn, the order reversed every round; medians over "
        f"{opts.repeats} rounds of one {opts.seconds:g} s window after {opts.warmup:g} s of "
        "warm-up. Ratio rows: guarded / unguarded of each median; their CPU is the servers' "
        "per request (gateway + inference, the load generator left out), with the range of the "
        "per-round ratios (each round measures both packages back to back). Target (issue 12): "
        f"at most {guard_cost.CPU_TARGET:.2f} × the CPU per prediction on the gateway path."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement window")
    parser.add_argument(
        "--repeats", type=int, default=3, help="windows per setting (HTTP: rounds, see above)"
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--skip-flask", action="store_true", help="leave the baseline out")
    parser.add_argument("--skip-gateway", action="store_true", help="leave the gateway out")
    parser.add_argument("--quick", action="store_true", help="1 s windows, 2 repeats (smoke)")
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
        help="the pipeline's output to bench (export/, package/, train/model.keras; "
        "default: this checkout's)",
    )
    parser.add_argument(
        "--package", type=Path, help="bench this model package instead (no Flask+Keras baseline)"
    )
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
        opts.seconds, opts.repeats, opts.warmup = 1.0, 2, 0.5

    with tempfile.TemporaryDirectory(prefix="brainscan-bench-") as scratch, ExitStack() as stack:
        workdir = opts.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        log("preparing the models (builds, exports and guards one if the pipeline has not)")
        prepare = [str(HERE / "prepare_model.py"), "--artifacts", str(opts.artifacts.resolve())]
        prepare += ["--workdir", str(workdir)]
        if opts.reference_model:
            prepare.append("--reference")
        for option, value in (("--package", opts.package), ("--plain-package", opts.plain_package)):
            if value is not None:
                prepare += [option, str(value.resolve())]
        info = run_json(prepare, timeout=900)
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
                    str(max(1.0, opts.seconds / 2)),
                    "--repeats",
                    str(opts.repeats),
                ],
                timeout=600,
                env={**os.environ, "INFERENCE_INTRA_OP_THREADS": str(intra_op)},
            )

        tensors = {
            name: tensor_source(*request_body(manifest, workdir, f"request-{name}"))
            for name, manifest in manifests.items()
        }
        served = {
            name: serve(
                stack, name, package, manifests[name]["name"], workdir, not opts.skip_gateway
            )
            for name, package in packages.items()
        }
        results = measure_rounds(served, tensors, upload_image(workdir), opts)
        memory_of = {
            name: {
                "inference service": memory_mb(s.inference_pid),
                **({"gateway": memory_mb(s.gateway_pid)} if s.gateway_pid else {}),
            }
            for name, s in served.items()
        }
        stack.close()  # the servers: not to share the cores with the rest
        raw_pair = measure_raw_pair(packages, opts) if len(packages) > 1 else {}

        first = results[served_first]
        service = {c: median_result(samples) for c, samples in first[INFERENCE].items()}
        gateway = {c: median_result(samples) for c, samples in first.get(GATEWAY, {}).items()}
        memory = {"inference": memory_of[served_first]["inference service"]}
        if "gateway" in memory_of[served_first]:
            memory["gateway"] = memory_of[served_first]["gateway"]

        flask: dict[int, dict] = {}
        if not opts.skip_flask and "keras_file" in info:
            port = free_port()
            with server(
                [str(HERE / "flask_keras.py"), "--keras", info["keras_file"], "--port", str(port)],
                {**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                f"http://127.0.0.1:{port}/ready",
                workdir / "flask.log",
                timeout=300,
            ) as process:
                for concurrency in opts.concurrency:
                    log(f"Flask + Keras, concurrency {concurrency}")
                    flask[concurrency] = load(
                        f"http://127.0.0.1:{port}/predict",
                        tensors[served_first],
                        concurrency,
                        opts,
                        {"flask": process.pid},
                    )
        output = table(raw_runs, service, gateway, flask, memory, info)
        if len(packages) > 1:
            setups = {GATEWAY: GATEWAY_SETUP, INFERENCE: INFERENCE_SETUP}
            guard = guard_cost.table(results, raw_pair, memory_of, setups, guard_header(info, opts))
            output += "\n\n" + guard
        sys.stdout.write(output + "\n")


if __name__ == "__main__":
    main()
