"""The settings A/B: variants parsed, order alternated, medians per variant."""

from __future__ import annotations

import argparse

import pytest


def test_a_variant_is_a_name_and_inference_settings(bench):
    compare = bench("compare_settings")
    assert compare.parse_variant(["spin-on", "INFERENCE_THREAD_SPINNING=true"]) == (
        "spin-on",
        {"INFERENCE_THREAD_SPINNING": "true"},
    )
    assert compare.parse_variant(["defaults"]) == ("defaults", {})
    for bad in ("THREAD_SPINNING=true", "INFERENCE_THREAD_SPINNING"):
        with pytest.raises(argparse.ArgumentTypeError, match="INFERENCE_NAME=value"):
            compare.parse_variant(["x", bad])


def test_rounds_alternate_the_order_so_drift_hits_every_variant_alike(bench):
    compare = bench("compare_settings")
    names = ["a", "b", "c"]
    assert [compare.round_order(names, r) for r in range(3)] == [names, names[::-1], names]


def test_medians_per_figure_and_failed_requests_summed(bench):
    compare = bench("compare_settings")
    samples = [
        {"throughput": t, "p50_ms": t / 100, "p99_ms": None, "errors": e,
         "cpu_ms_per_request": {"service": c, "wrk": 0.1}}
        for t, e, c in [(100.0, 0, 1.0), (300.0, 2, 3.0), (200.0, 1, 2.0)]
    ]  # fmt: skip
    summary = compare.medians(samples)
    assert summary["throughput"] == 200.0 and summary["p50_ms"] == 2.0
    assert "p99_ms" not in summary
    assert summary["cpu_ms:service"] == 2.0 and summary["cpu_ms:wrk"] == 0.1
    assert summary["errors"] == 3 and summary["rounds"] == 3
