"""The guard's cost: per-round results into medians, ratio rows and the verdict on the target."""

from __future__ import annotations


def sample(throughput, p50, p99, cpu, errors=0) -> dict:
    return {
        "throughput": throughput,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": errors,
        "cpu_ms_per_request": cpu,
    }


def gateway_rounds(gateway_ms: list[float], inference_ms: list[float]) -> list[dict]:
    return [
        sample(100.0 + i, 10.0, 20.0, {"gateway": g, "inference": n, "wrk": 0.3})
        for i, (g, n) in enumerate(zip(gateway_ms, inference_ms, strict=True))
    ]


def test_medians_per_figure_per_process_and_failed_requests_summed(bench):
    guard_cost = bench("guard_cost")
    samples = [
        sample(100.0, 1.0, None, {"inference": 1.0, "wrk": 0.1}, errors=1),
        sample(300.0, 3.0, None, {"inference": 3.0, "wrk": 0.3}, errors=2),
        sample(200.0, 2.0, None, {"inference": 2.0, "wrk": 0.2}),
    ]
    result = guard_cost.median_result(samples)
    assert (result["throughput"], result["p50_ms"]) == (200.0, 2.0)
    assert "p99_ms" not in result  # no round answered: no figure, rather than a made-up one
    assert result["cpu_ms_per_request"] == {"inference": 2.0, "wrk": 0.2}
    assert (result["errors"], result["rounds"]) == (3, 3)


def test_the_gateway_paths_ratio_adds_gateway_and_inference_but_not_the_client(bench):
    guard_cost = bench("guard_cost")
    guarded = gateway_rounds([4.2, 4.0, 4.4], [1.8, 2.0, 2.3])  # sums 6.0, 6.0, 6.7
    unguarded = gateway_rounds([4.0, 4.1, 3.9], [1.5, 1.6, 1.5])  # sums 5.5, 5.7, 5.4
    ratio = guard_cost.cpu_ratio(guarded, unguarded)
    assert round(ratio["guarded_ms"], 9) == 6.0 and round(ratio["unguarded_ms"], 9) == 5.5
    assert round(ratio["ratio"], 4) == round(6.0 / 5.5, 4)
    low, high = ratio["per_round"]  # each round's pair: 6.0/5.5, 6.0/5.7, 6.7/5.4
    assert (round(low, 4), round(high, 4)) == (round(6.0 / 5.7, 4), round(6.7 / 5.4, 4))
    assert round(ratio["per_process"]["gateway"], 4) == round(4.2 / 4.0, 4)
    assert round(ratio["per_process"]["inference"], 4) == round(2.0 / 1.5, 4)
    assert "wrk" not in ratio["per_process"]

    row = guard_cost.ratio_row("gateway", "gateway end to end", "concurrency 8", guarded, unguarded)
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[:3] == ["guarded / unguarded", "gateway end to end", "concurrency 8"]
    assert cells[3:6] == ["1.000", "1.000", "1.000"]  # req/s, p50, p99: medians alike
    assert cells[6].startswith("gateway + inference 6.00 / 5.50 = 1.091 (≤ 1.05: MISSED)")
    assert "gateway 1.050 · inference 1.333" in cells[6]
    assert cells[6].endswith("per round 1.053–1.241") and cells[7] == "3"


def test_the_target_is_met_at_five_percent_and_only_judged_on_the_gateway_path(bench):
    guard_cost = bench("guard_cost")
    guarded = gateway_rounds([4.0], [2.3])  # 6.3 against 6.0: 5 % more
    unguarded = gateway_rounds([4.0], [2.0])
    row = guard_cost.ratio_row("gateway", "gw", "concurrency 1", guarded, unguarded)
    assert "6.30 / 6.00 = 1.050 (≤ 1.05: met)" in row
    alone = [sample(900.0, 1.0, 2.0, {"inference": 1.2, "wrk": 0.1})]
    plain = [sample(1000.0, 0.8, 2.0, {"inference": 1.0, "wrk": 0.1})]
    row = guard_cost.ratio_row("inference", "inference alone", "concurrency 1", alone, plain)
    assert "| 0.900 | 1.250 | 1.000 | inference 1.20 / 1.00 = 1.200; per round" in row
    assert "≤ 1.05" not in row


def test_table_pairs_each_row_with_its_ratio_and_ends_with_the_verdict(bench):
    guard_cost = bench("guard_cost")
    results = {
        "guarded": {
            "gateway": {1: gateway_rounds([4.0], [2.1]), 8: gateway_rounds([4.0], [3.0])},
            "inference": {1: [sample(900.0, 1.0, 2.0, {"inference": 1.2})]},
        },
        "unguarded": {
            "gateway": {1: gateway_rounds([4.0], [2.0]), 8: gateway_rounds([4.0], [2.0])},
            "inference": {1: [sample(1000.0, 0.8, 2.0, {"inference": 1.0})]},
        },
    }
    raw = {"guarded": {"1": [(1000.0, 1.0), (900.0, 1.1)]},
           "unguarded": {"1": [(1400.0, 0.7), (1300.0, 0.75)]}}  # fmt: skip
    memory = {"guarded": {"inference service": (230.0, 231.0)},
              "unguarded": {"inference service": (220.0, 221.0)}}  # fmt: skip
    setups = {"gateway": "gateway end to end", "inference": "inference service"}
    text = guard_cost.table(results, raw, memory, setups, "Header.")
    lines = text.splitlines()
    assert lines[0] == "Header."
    rows = [[cell.strip() for cell in line.split("|")[1:4]] for line in lines if line[:2] == "| "]
    assert rows[1:4] == [
        ["guarded", "gateway end to end", "concurrency 1"],
        ["unguarded", "gateway end to end", "concurrency 1"],
        ["guarded / unguarded", "gateway end to end", "concurrency 1"],
    ]
    assert ["guarded / unguarded", "inference service", "concurrency 1"] in rows
    raw_ratio = next(line for line in lines if "raw onnxruntime" in line and " / " in line)
    assert "per image 1.050 / 0.725 = 1.448; per round 1.429–1.467" in raw_ratio
    assert "| guarded | inference service, resident memory | after the load |" in text
    assert lines[-1] == (
        "The guard's cost on the gateway path, CPU per prediction (gateway + inference), "
        "guarded / unguarded: 1.017 at concurrency 1 (met), 1.167 at concurrency 8 (MISSED); "
        "target ≤ 1.05."
    )
