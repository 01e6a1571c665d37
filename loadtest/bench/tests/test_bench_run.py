"""run.py end to end on a tiny real package, and its table read figure by figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]


def test_a_quick_run_prints_the_model_cpu_per_request_and_every_target(tiny_package, tmp_path):
    options = ["--quick", "--skip-gateway", "--concurrency", "1", "8"]
    options += ["--package", str(tiny_package), "--workdir", str(tmp_path / "work")]
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Model: tiny, 8×8 px (package ")
    rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): line for line in lines[2:]}
    for batch in (1, 8, 32):  # the service's thread setting, then a thread per CPU
        for threads in ("1 thread (service)", "a thread per CPU"):
            assert "per image" in rows[("raw onnxruntime, in-process", f"batch {batch}, {threads}")]
    for concurrency in (1, 8):
        row = rows[("inference service, HTTP binary", f"concurrency {concurrency}")]
        assert "inference " in row and "load generator " in row and "failed" not in row
    assert "≥ 0.75 × limit:" in rows[("inference service, HTTP binary", "concurrency 8")]
    assert not any(key[0].startswith("Flask") for key in rows)  # no Keras model: no baseline
    assert ("inference service, resident memory", "one model, after the load") in rows


def test_table_reads_targets_and_cpu_from_the_figures(bench):
    run = bench("run")
    raw = {
        "1 thread (service)": {
            "throughput": {"1": [400.0, 420.0, 410.0], "8": [500.0], "32": [480.0]},
            "cpu_ms_per_image": {"1": [4.0], "8": [3.5], "32": [3.6]},
        },
        "a thread per CPU": {  # faster at batch 1 only: not the service's call, but the limit
            "throughput": {"1": [505.0], "8": [300.0], "32": [300.0]},
            "cpu_ms_per_image": {"1": [4.1], "8": [6.0], "32": [6.0]},
        },
    }
    cpu = {"inference": 3.0, "load generator": 0.2}
    figures = {1: (300.0, 3.1, 5.0, 0), 8: (380.0, 20.0, 30.0, 2), 32: (360.0, 80.0, 400.0, 0)}
    service = {
        c: {"throughput": t, "p50_ms": p50, "p99_ms": p99, "errors": e, "cpu_ms_per_request": cpu}
        for c, (t, p50, p99, e) in figures.items()
    }
    flask = {
        c: {"throughput": 30.0, "p50_ms": 100.0, "p99_ms": 200.0, "errors": 0,
            "cpu_ms_per_request": {"flask": 60.0, "load generator": 0.3}}
        for c in (1, 8, 32)
    }  # fmt: skip
    info = {"model": "MobileNetV2 alpha 1, 224 px (x)", "onnx_origin": "o", "keras_origin": "k"}
    text = run.table(raw, service, {}, flask, {"inference": (200.0, 310.0)}, info)
    assert text.startswith("Model: MobileNetV2 alpha 1, 224 px (x).")
    row = {line.split("|")[2].strip(): line for line in text.splitlines() if "HTTP binary" in line}
    # limit = 505/s (batch 1, a thread per CPU); the service's raw batch-1 call = 1000 / 410
    assert "+0.66 ms (≤ 2: met)" in row["concurrency 1"]
    assert "inference 3.00 · load generator 0.20" in row["concurrency 1"]
    assert "≥ 0.75 × limit: met" in row["concurrency 8"]  # 380 >= 378.75
    assert "| 0.75 |" in row["concurrency 8"]
    assert "2 failed requests" in row["concurrency 8"]
    assert "p99 < BentoML 360 ms: MISSED" in row["concurrency 32"]
    assert "≥ 10 × Flask+Keras: met" in row["concurrency 32"]  # 12x
    assert "flask 60.00 · load generator 0.30" in text
    assert "peak 310 MB (≤ 300: MISSED)" in text


def test_cpu_per_request_counts_every_answer_of_the_run(bench):
    workload = bench("workload")
    repeats = [
        {"throughput": 100.0, "p50_ms": 2.0, "p99_ms": 4.0, "errors": 0},
        {"throughput": 120.0, "p50_ms": 3.0, "p99_ms": 9.0, "errors": 1},
        {"throughput": 90.0, "p50_ms": 1.0, "p99_ms": 5.0, "errors": 0,
         "answered_in_run": 500, "client_cpu_seconds": 0.25},
    ]  # fmt: skip
    result = workload.summarise_run(repeats, {"inference": 1.5})
    assert result["throughput"] == 100.0 and result["p50_ms"] == 2.0 and result["p99_ms"] == 5.0
    assert result["errors"] == 1
    assert result["cpu_ms_per_request"] == {"inference": 3.0, "load generator": 0.5}
