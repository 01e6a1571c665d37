"""A/B (or A/B/C...) of inference settings: each variant its own service, measured alternately.

Every variant is served at once by its own process (``INFERENCE_*`` settings given per variant)
and loaded in turn, the order reversed every round, so that a machine whose load drifts (other
work on the same cores) moves every variant alike. Per variant and concurrency it reports the
medians over rounds of throughput, p50, p99 and the CPU milliseconds per request of the service
and of the load generator, wrk (CPU per request moves less with noise than throughput does).
``--raw`` also measures raw onnxruntime in-process with each variant's settings.

Example: ``compare_settings.py --variant spin-off INFERENCE_THREAD_SPINNING=false
--variant spin-on INFERENCE_THREAD_SPINNING=true --rounds 6``. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import wrk_load
from processes import free_port, inference_env, log, run_json, server
from workload import request_body
from wrk_load import LOAD_GENERATOR

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def parse_variant(words: list[str]) -> tuple[str, dict[str, str]]:
    """``NAME KEY=VALUE ...`` -> (name, settings); every key must be an INFERENCE_ variable."""
    name, *assignments = words
    settings = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.startswith("INFERENCE_"):
            raise argparse.ArgumentTypeError(f"{assignment!r}: expected INFERENCE_NAME=value")
        settings[key] = value
    return name, settings


def round_order(names: list[str], round_index: int) -> list[str]:
    """Variants in the order of this round: forwards on even rounds, backwards on odd ones."""
    return names if round_index % 2 == 0 else names[::-1]


def medians(samples: list[dict]) -> dict:
    """Per-round results of one variant at one load -> medians of each figure."""
    summary = {
        key: statistics.median(s[key] for s in samples if s.get(key) is not None)
        for key in ("throughput", "p50_ms", "p99_ms")
        if any(s.get(key) is not None for s in samples)
    }
    for who in samples[0]["cpu_ms_per_request"]:
        summary[f"cpu_ms:{who}"] = statistics.median(s["cpu_ms_per_request"][who] for s in samples)
    summary["errors"] = sum(s["errors"] for s in samples)
    summary["rounds"] = len(samples)
    return summary


def markdown(results: dict[str, dict[str, list[dict]]], raw: dict[str, dict[str, list]]) -> str:
    rows = [
        "| variant | load | req/s | p50 ms | p99 ms | service CPU ms/req | client CPU ms/req |"
        " rounds |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, per_load in results.items():
        for load_name, samples in per_load.items():
            m = medians(samples)
            failed = f" ({m['errors']} failed)" if m["errors"] else ""
            rows.append(
                f"| {name} | {load_name} | {m.get('throughput', 0):,.0f} | "
                f"{m.get('p50_ms', float('nan')):.2f} | {m.get('p99_ms', float('nan')):.2f} | "
                f"{m['cpu_ms:service']:.3f} | {m[f'cpu_ms:{LOAD_GENERATOR}']:.3f} | "
                f"{m['rounds']}{failed} |"
            )
    for name, per_batch in raw.items():
        for batch, samples in per_batch.items():
            throughput = statistics.median(s[0] for s in samples)
            cpu = statistics.median(s[1] for s in samples)
            rows.append(
                f"| {name} | raw onnxruntime, batch {batch} | {throughput:,.0f} img/s | "
                f"{1000 * int(batch) / throughput:.2f} per call | — | {cpu:.3f} per image | — | "
                f"{len(samples)} |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--variant", nargs="+", action="append", required=True, metavar="NAME [KEY=VALUE ...]"
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=3, help="seconds of each window")
    parser.add_argument("--warmup", type=int, default=1, help="seconds before each window")
    parser.add_argument("--raw", type=int, nargs="*", default=[], help="raw batch sizes too")
    parser.add_argument("--reference-model", action="store_true", help="MobileNetV2 a1.0 224 px")
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--json", type=Path, help="also write every sample here")
    opts = parser.parse_args()
    variants = dict(parse_variant(words) for words in opts.variant)

    with tempfile.TemporaryDirectory(prefix="brainscan-ab-") as scratch, ExitStack() as stack:
        workdir = opts.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        prepare = [str(HERE / "prepare_model.py"), "--artifacts", str(REPO / "artifacts")]
        prepare += ["--workdir", str(workdir)]
        if opts.reference_model:
            prepare.append("--reference")
        info = run_json(prepare, timeout=900)
        package = Path(info["package_dir"])
        manifest = json.loads((package / "manifest.json").read_text())
        body, header_length = request_body(manifest, workdir)
        log(f"model: {info['model']}")

        targets = {}
        for name, settings in variants.items():
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            process = stack.enter_context(
                server(
                    ["-m", "brainscan_inference"],
                    inference_env(package, port, INFERENCE_LOG_LEVEL="INFO", **settings),
                    f"{base}/v2/health/ready",
                    workdir / f"service-{name}.log",
                    timeout=120,
                )
            )
            url = f"{base}/v2/models/{manifest['name']}/infer"
            targets[name] = wrk_load.v2_target(url, body, header_length, {"service": process.pid})

        results = {name: {f"concurrency {c}": [] for c in opts.concurrency} for name in variants}
        raw: dict[str, dict[str, list]] = {name: {} for name in variants}
        for round_index in range(opts.rounds):
            log(f"round {round_index + 1}/{opts.rounds}")
            for concurrency in opts.concurrency:
                for name in round_order(list(variants), round_index):
                    result = wrk_load.measure(
                        targets[name], concurrency, opts.duration, opts.warmup
                    )
                    results[name][f"concurrency {concurrency}"].append(dataclasses.asdict(result))
            for name in round_order(list(variants), round_index) if opts.raw else []:
                measured = run_json(
                    [str(HERE / "raw_onnxruntime.py"), "--package", str(package), "--seconds"]
                    + [str(max(1.0, opts.duration / 2)), "--repeats", "1", "--batches"]
                    + [str(b) for b in opts.raw],
                    timeout=300,
                    env={**os.environ, **variants[name]},
                )
                for batch, values in measured["throughput"].items():
                    cpu = measured["cpu_ms_per_image"][batch][0]
                    raw[name].setdefault(batch, []).append((values[0], cpu))
        if opts.json:
            opts.json.write_text(json.dumps({"results": results, "raw": raw}, indent=1))
        sys.stdout.write(f"model: {info['model']}\n\n{markdown(results, raw)}\n")


if __name__ == "__main__":
    main()
