"""run.py end to end on a tiny real package with and without its guard, its table read row by
row, and its rounds. No figure is compared with a threshold: the machine is shared."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1]
SYSTEMS = (
    "naive FastAPI + onnxruntime (baseline)",
    "inference, HTTP v2 binary",
    "gateway end to end, 512×512 JPEG upload",
)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("|")[1:-1]]


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("wrk") is None,
    reason="wrk is not installed (Debian package wrk; .ci/run and `make bench` install it)",
)
def test_a_quick_run_has_every_system_at_every_concurrency_and_the_guards_cost(
    tiny_guarded_package, tiny_package, tmp_path
):
    options = ["--quick", "--workdir", str(tmp_path / "work")]
    options += ["--package", str(tiny_guarded_package), "--plain-package", str(tiny_package)]
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), *options],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    served, rest = done.stdout.split("\n\nCost of the out-of-distribution guard: ")
    guard, shadow = rest.split("\n\nCost of shadowing: ")
    lines = served.splitlines()
    assert lines[0].startswith(f"Model: tiny, 8×8 px (package {tiny_guarded_package})")
    assert lines[2].startswith("| system | load | req/s | p50 ms | p99 ms | server CPU ms/req |")
    rows = {tuple(cells(line)[:2]): cells(line) for line in lines[4:]}
    for threads in ("1 thread (service)", "2 threads"):
        for batch in (1, 32):
            row = rows[(f"raw onnxruntime, in-process, {threads}", f"batch {batch}")]
            assert float(row[2].removesuffix(" img/s").replace(",", "")) > 0
    for system in SYSTEMS:
        for concurrency in (1, 8, 32):
            row = rows.pop((system, f"concurrency {concurrency}"))
            assert float(row[2].replace(",", "")) > 0  # req/s
            assert row[5] != "—" and row[7] != "—"  # server CPU and memory were read
    assert [key for key in rows if not key[0].startswith("raw")] == []

    rows = {tuple(cells(line)[:3]): line for line in guard.splitlines()[2:] if line[:2] == "| "}
    for setup in SYSTEMS[1:]:
        for concurrency in (1, 8, 32):
            for package in ("guarded", "unguarded", "guarded / unguarded"):
                assert (package, setup, f"concurrency {concurrency}") in rows
    assert guard.splitlines()[-1].startswith("The guard's cost on the gateway path")

    rows = {tuple(cells(line)[:2]): cells(line) for line in shadow.splitlines() if line[:2] == "| "}
    for concurrency in (1, 8, 32):
        for gateway in ("shadow on", "shadow off", "on / off"):
            row = rows[(gateway, f"concurrency {concurrency}")]
            assert float(row[2].replace(",", "")) > 0  # req/s, or its ratio
    verdict = shadow.splitlines()[-1]
    assert verdict.startswith("At concurrency 8, shadowing on / off: p50 ")
    # Every offered prediction is accounted for, and the copy agrees with itself.
    assert "The mirror compared " in verdict and "agreement 1.000" in verdict


def test_rounds_alternate_the_packages_and_load_every_path_at_every_concurrency(bench, monkeypatch):
    run = bench("run")
    wrk_load = bench("wrk_load")
    calls = []

    def fake_measure(target, concurrency, seconds, warmup, threads):
        calls.append((target.url, concurrency))
        return wrk_load.WrkResult(concurrency, 10, 1.0, 10.0, 1.0, 2.0, 3.0, 4.0, {}, {})

    monkeypatch.setattr(wrk_load, "measure", fake_measure)

    def target(url: str):
        return wrk_load.raw_target(url, Path("body.bin"), {})

    targets = {
        "guarded": {"naive": target("n"), "inference": target("i-g"), "gateway": target("g-g")},
        "unguarded": {"inference": target("i-u"), "gateway": target("g-u")},
    }
    opts = argparse.Namespace(repeats=2, concurrency=[1, 8], duration=1, warmup=0, wrk_threads=1)
    results = run.measure_rounds(targets, opts)
    assert calls[:10] == [
        ("n", 1), ("i-g", 1), ("i-u", 1), ("g-g", 1), ("g-u", 1),  # round 1: in order
        ("n", 8), ("i-g", 8), ("i-u", 8), ("g-g", 8), ("g-u", 8),
    ]  # fmt: skip
    assert calls[10:15] == [("n", 1), ("i-u", 1), ("i-g", 1), ("g-u", 1), ("g-g", 1)]  # reversed
    assert len(calls) == 20
    assert set(results["guarded"]) == {"naive", "inference", "gateway"}
    assert "naive" not in results["unguarded"]
    assert len(results["unguarded"]["gateway"][8]) == 2
    assert results["guarded"]["naive"][1][0]["throughput"] == 10.0


def test_the_table_divides_by_the_naive_server_and_the_best_raw_figure(bench):
    run = bench("run")
    raw = {
        "1 thread (service)": {
            "throughput": {"1": [400.0, 420.0, 410.0], "32": [480.0]},
            "cpu_ms_per_image": {"1": [2.4], "32": [2.0]},
        },
        "2 threads": {  # faster at batch 32: not the service's setting, but the limit
            "throughput": {"1": [380.0], "32": [800.0]},
            "cpu_ms_per_image": {"1": [4.1], "32": [2.4]},
        },
    }

    def result(throughput: float, cpu: dict[str, float], rss: dict[str, float]) -> dict:
        return {
            "throughput": throughput,
            "p50_ms": 1.5,
            "p99_ms": 3.25,
            "errors": 0,
            "cpu_ms_per_request": {**cpu, "wrk": 0.05},
            "rss_mb": rss,
        }

    systems = {
        "naive": {8: result(200.0, {"naive": 5.0}, {"naive": 90.0})},
        "inference": {8: result(400.0, {"inference": 2.5}, {"inference": 120.0})},
        "gateway": {
            8: result(100.0, {"gateway": 4.0, "inference": 1.25}, {"gateway": 95, "inference": 120})
        },
    }
    info = {"model": "tiny", "onnx_origin": "o"}
    text = run.table(raw, systems, info)
    assert text.startswith("Model: tiny. ONNX o.")
    rows = {tuple(cells(line)[:2]): cells(line) for line in text.splitlines()[4:]}
    limit = rows[("raw onnxruntime, in-process, 2 threads", "batch 32")]
    assert limit[2:4] == ["800.0 img/s", "40.00 per call"] and limit[-1] == "1.00"
    assert rows[("raw onnxruntime, in-process, 1 thread (service)", "batch 1")][-1] == "0.51"
    naive = rows[("naive FastAPI + onnxruntime (baseline)", "concurrency 8")]
    assert naive[2:] == ["200.0", "1.50", "3.25", "5.00", "0.050", "90", "1.00", "0.25"]
    inference = rows[("inference, HTTP v2 binary", "concurrency 8")]
    assert inference[-2:] == ["2.00", "0.50"]
    gateway = rows[("gateway end to end, 512×512 JPEG upload", "concurrency 8")]
    assert gateway[5] == "5.25 (gateway 4.00 · inference 1.25)"
    assert gateway[7] == "215 (gateway 95 · inference 120)"
    assert gateway[-2:] == ["0.50", "0.12"]
