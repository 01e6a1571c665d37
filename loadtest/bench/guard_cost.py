"""The out-of-distribution guard's cost: guarded against unguarded, rows and ratios.

run.py serves the guarded and the unguarded package side by side (an inference service each,
a gateway in front of each) and loads them alternately, the order reversed every round, so
that drifting load from other work on the machine hits both alike. This module turns the
per-round results into medians and the table: a row per package, setup and load, then the
ratio guarded / unguarded of each figure. The issue's target is on the gateway path: at most
5 % more CPU per prediction, counting the servers' CPU (gateway + inference), not the client's.
"""

from __future__ import annotations

import statistics

from wrk_load import LOAD_GENERATOR

GUARDED = "guarded"
UNGUARDED = "unguarded"
CPU_TARGET = 1.05
"""At most this much CPU per prediction on the gateway path, guarded / unguarded."""
GATEWAY = "gateway"
INFERENCE = "inference"


def median_result(samples: list[dict]) -> dict:
    """One result per round (``wrk_load.WrkResult`` as a dict) -> medians, in the same form."""
    result = {
        key: statistics.median(s[key] for s in samples if s.get(key) is not None)
        for key in ("throughput", "p50_ms", "p99_ms")
        if any(s.get(key) is not None for s in samples)
    }
    result["errors"] = sum(s["errors"] for s in samples)
    for figure in ("cpu_ms_per_request", "rss_mb"):
        if figure in samples[0]:
            result[figure] = {
                who: statistics.median(s[figure][who] for s in samples)
                for who in samples[0][figure]
            }
    result["rounds"] = len(samples)
    return result


def servers_cpu_ms(result: dict) -> float:
    """CPU ms per request of the servers of a row (every process but the load generator)."""
    return sum(ms for who, ms in result["cpu_ms_per_request"].items() if who != LOAD_GENERATOR)


def cpu_ratio(guarded: list[dict], unguarded: list[dict]) -> dict:
    """Servers' CPU per request, guarded / unguarded: of the medians over rounds, and the range
    of the per-round ratios (round i of each package ran back to back, so they pair)."""
    cpu_g = [servers_cpu_ms(s) for s in guarded]
    cpu_u = [servers_cpu_ms(s) for s in unguarded]
    per_round = [g / u for g, u in zip(cpu_g, cpu_u, strict=True) if u > 0]
    median_g, median_u = statistics.median(cpu_g), statistics.median(cpu_u)
    return {
        "guarded_ms": median_g,
        "unguarded_ms": median_u,
        "ratio": median_g / median_u,
        "per_round": (min(per_round), max(per_round)),
        "per_process": {
            who: statistics.median(s["cpu_ms_per_request"][who] for s in guarded)
            / statistics.median(s["cpu_ms_per_request"][who] for s in unguarded)
            for who in guarded[0]["cpu_ms_per_request"]
            if who != LOAD_GENERATOR
        },
    }


def ratio_row(path: str, setup: str, load: str, guarded: list[dict], unguarded: list[dict]) -> str:
    """The row ``guarded / unguarded`` of one path and load: each figure's ratio of medians,
    the CPU one checked against the target on the gateway path."""
    g, u = median_result(guarded), median_result(unguarded)
    cpu = cpu_ratio(guarded, unguarded)
    servers = " + ".join(cpu["per_process"])
    cell = f"{servers} {cpu['guarded_ms']:.2f} / {cpu['unguarded_ms']:.2f} = {cpu['ratio']:.3f}"
    if path == GATEWAY:
        met = "met" if cpu["ratio"] <= CPU_TARGET else "MISSED"
        cell += f" (≤ {CPU_TARGET:.2f}: {met})"
    if len(cpu["per_process"]) > 1:
        cell += " · " + " · ".join(f"{w} {r:.3f}" for w, r in cpu["per_process"].items())
    low, high = cpu["per_round"]
    cell += f"; per round {low:.3f}–{high:.3f}"
    return (
        f"| {GUARDED} / {UNGUARDED} | {setup} | {load} | {_ratio(g, u, 'throughput')} | "
        f"{_ratio(g, u, 'p50_ms')} | {_ratio(g, u, 'p99_ms')} | {cell} | {len(guarded)} |"
    )


def raw_ratio_row(batch: str, guarded: list[tuple], unguarded: list[tuple]) -> str:
    """Raw onnxruntime: (images/s, CPU ms per image) per round of each package."""
    throughput = statistics.median(t for t, _ in guarded) / statistics.median(
        t for t, _ in unguarded
    )
    cpu_g = statistics.median(c for _, c in guarded)
    cpu_u = statistics.median(c for _, c in unguarded)
    per_round = [g[1] / u[1] for g, u in zip(guarded, unguarded, strict=True)]
    return (
        f"| {GUARDED} / {UNGUARDED} | raw onnxruntime, in-process | batch {batch} | "
        f"{throughput:.3f} | — | — | per image {cpu_g:.3f} / {cpu_u:.3f} = {cpu_g / cpu_u:.3f}; "
        f"per round {min(per_round):.3f}–{max(per_round):.3f} | {len(guarded)} |"
    )


def table(
    results: dict[str, dict[str, dict[int, list[dict]]]],
    raw: dict[str, dict[str, list[tuple]]],
    memory: dict[str, dict[str, tuple[float, float]]],
    setups: dict[str, str],
    header: str,
) -> str:
    """``results[package][path][concurrency]``: one result per round; ``raw[package][batch]``:
    (images/s, CPU ms per image) per round; ``memory[package][process]``: RSS and peak;
    ``setups[path]``: the setup column of each path. Each guarded row is followed by its
    unguarded row and their ratio; a sentence after the table gives the verdict."""
    rows = [
        "| package | setup | load | req/s | p50 ms | p99 ms | CPU ms per request | rounds |",
        "|---|---|---|---:|---:|---:|---|---:|",
    ]
    paths = [path for path in (GATEWAY, INFERENCE) if path in results[GUARDED]]
    for path in paths:
        for concurrency in results[GUARDED][path]:
            load = f"concurrency {concurrency}"
            for package in (GUARDED, UNGUARDED):
                m = median_result(results[package][path][concurrency])
                failed = f" ({m['errors']} failed)" if m["errors"] else ""
                cpu = " · ".join(f"{w} {ms:.2f}" for w, ms in m["cpu_ms_per_request"].items())
                rows.append(
                    f"| {package} | {setups[path]} | {load} | {_fmt(m.get('throughput'), 1)} | "
                    f"{_fmt(m.get('p50_ms'), 2)} | {_fmt(m.get('p99_ms'), 2)} | {cpu} | "
                    f"{m['rounds']}{failed} |"
                )
            rows.append(
                ratio_row(
                    path,
                    setups[path],
                    load,
                    results[GUARDED][path][concurrency],
                    results[UNGUARDED][path][concurrency],
                )
            )
    for batch in raw.get(GUARDED, {}):
        for package in (GUARDED, UNGUARDED):
            samples = raw[package][batch]
            throughput = statistics.median(t for t, _ in samples)
            cpu = statistics.median(c for _, c in samples)
            rows.append(
                f"| {package} | raw onnxruntime, in-process | batch {batch} | "
                f"{_fmt(throughput, 1)} | {1000 * int(batch) / throughput:.2f} | — | "
                f"{cpu:.3f} per image | {len(samples)} |"
            )
        rows.append(raw_ratio_row(batch, raw[GUARDED][batch], raw[UNGUARDED][batch]))
    for package in (GUARDED, UNGUARDED):
        for process, (rss, peak) in memory.get(package, {}).items():
            rows.append(
                f"| {package} | {process}, resident memory | after the load | — | — | — | "
                f"RSS {rss:.0f} MB, peak {peak:.0f} MB | — |"
            )
    return header + "\n\n" + "\n".join(rows) + verdict(results)


def verdict(results: dict[str, dict[str, dict[int, list[dict]]]]) -> str:
    """The gateway path's CPU ratio at each concurrency against the target, as a sentence."""
    gateway = results[GUARDED].get(GATEWAY)
    if not gateway:
        return ""
    parts = []
    for concurrency, samples in gateway.items():
        ratio = cpu_ratio(samples, results[UNGUARDED][GATEWAY][concurrency])["ratio"]
        met = "met" if ratio <= CPU_TARGET else "MISSED"
        parts.append(f"{ratio:.3f} at concurrency {concurrency} ({met})")
    return (
        "\n\nThe guard's cost on the gateway path, CPU per prediction (gateway + inference), "
        f"guarded / unguarded: {', '.join(parts)}; target ≤ {CPU_TARGET:.2f}."
    )


def _ratio(guarded: dict, unguarded: dict, key: str) -> str:
    g, u = guarded.get(key), unguarded.get(key)
    return "—" if g is None or not u else f"{g / u:.3f}"


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"
