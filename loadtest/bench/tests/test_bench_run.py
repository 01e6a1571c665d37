"""run.py end to end on a tiny real package with and without its guard, its tables read figure
by figure, and its rounds."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]


def test_a_quick_run_prints_the_model_cpu_per_request_every_target_and_the_guards_cost(
    tiny_guarded_package, tiny_package, tmp_path
):
    options = ["--quick", "--concurrency", "1", "8", "--workdir", str(tmp_path / "work")]
    options += ["--package", str(tiny_guarded_package), "--plain-package", str(tiny_package)]
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), *options],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    served, guard = done.stdout.split("\n\nCost of the out-of-distribution guard: ")
    lines = served.splitlines()
    assert lines[0].startswith(f"Model: tiny, 8×8 px (package {tiny_guarded_package})")
    assert f"Guard: {tiny_guarded_package}." in lines[0]
    rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): line for line in lines[2:]}
    for batch in (1, 8, 32):  # the service's thread setting, then a thread per CPU
        for threads in ("1 thread (service)", "a thread per CPU"):
            assert "per image" in rows[("raw onnxruntime, in-process", f"batch {batch}, {threads}")]
    for concurrency in (1, 8):
        row = rows[("inference service, HTTP binary", f"concurrency {concurrency}")]
        assert "inference " in row and "load generator " in row and "failed" not in row
        row = rows[("gateway end to end, 512×512 JPEG upload", f"concurrency {concurrency}")]
        assert "gateway " in row and "inference " in row and "failed" not in row
    assert "≥ 0.75 × limit:" in rows[("inference service, HTTP binary", "concurrency 8")]
    assert not any(key[0].startswith("Flask") for key in rows)  # no Keras model: no baseline
    assert ("inference service, resident memory", "one model, after the load") in rows

    lines = guard.splitlines()
    assert lines[0].startswith(f"the served package ({tiny_guarded_package}; guard: ")
    rows = {tuple(cell.strip() for cell in line.split("|")[1:4]): line for line in lines[2:]}
    for setup in ("gateway end to end, 512×512 JPEG upload", "inference service, HTTP binary"):
        for concurrency in (1, 8):
            for package in ("guarded", "unguarded"):
                row = rows[(package, setup, f"concurrency {concurrency}")]
                assert row.endswith("| 2 |")  # 2 rounds, no failed request
            ratio = rows[("guarded / unguarded", setup, f"concurrency {concurrency}")]
            assert ("(≤ 1.05: " in ratio) == setup.startswith("gateway")
    for batch in (1, 8):
        assert (
            "per image"
            in rows[("guarded / unguarded", "raw onnxruntime, in-process", f"batch {batch}")]
        )
    assert ("unguarded", "gateway, resident memory", "after the load") in rows
    assert lines[-1].startswith("The guard's cost on the gateway path, CPU per prediction")


def test_rounds_alternate_the_packages_and_watch_gateway_and_inference_on_the_gateway_path(
    bench, monkeypatch, tmp_path
):
    run = bench("run")
    calls = []

    def fake_load(url, source, concurrency, opts, watch):
        calls.append((url, source[0], concurrency, opts.repeats, dict(watch)))
        return {"throughput": 1.0, "errors": 0, "cpu_ms_per_request": {}}

    monkeypatch.setattr(run, "load", fake_load)
    served = {
        "guarded": run.Served(11, "http://i-g", 12, "http://g-g"),
        "unguarded": run.Served(21, "http://i-u", 22, "http://g-u"),
    }
    tensors = {"guarded": ["--body", "g.bin"], "unguarded": ["--body", "u.bin"]}
    opts = argparse.Namespace(repeats=2, concurrency=[1], seconds=1.0, warmup=0.0)
    results = run.measure_rounds(served, tensors, tmp_path / "slice.jpg", opts)
    assert [(url, source, repeats) for url, source, _, repeats, _ in calls] == [
        ("http://i-g", "--body", 1), ("http://i-u", "--body", 1),  # round 1: in order,
        ("http://g-g", "--upload", 1), ("http://g-u", "--upload", 1),
        ("http://i-u", "--body", 1), ("http://i-g", "--body", 1),  # round 2: reversed
        ("http://g-u", "--upload", 1), ("http://g-g", "--upload", 1),
    ]  # fmt: skip
    assert calls[0][4] == {"inference": 11}
    assert calls[2][4] == {"gateway": 12, "inference": 11}
    assert len(results["guarded"]["gateway"][1]) == len(results["unguarded"]["inference"][1]) == 2


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
