"""What mirroring to a challenger in shadow costs the answers: shadowing on against off.

run.py serves the package once more, by an inference service that also holds a copy of it as
the challenger (``INFERENCE_CHALLENGER_DIR``), with two gateways in front: one mirroring every
answered prediction to the challenger (``GATEWAY_SHADOW_FRACTION=1``), one not (``0``). Both
are loaded in the same rounds, in turn, the order reversed every round. The issue's target is
zero added p50 and p99 on the answer path at concurrency 8; the servers' CPU per request shows
what the mirrored work costs (the challenger's inference is real work on the same cores), and
the mirror's own figures show how much of it was dropped rather than queued.
"""

from __future__ import annotations

import statistics

from guard_cost import GATEWAY, _fmt, _ratio, median_result, servers_cpu_ms

SHADOW_ON = "shadow on"
SHADOW_OFF = "shadow off"
TARGET_CONCURRENCY = 8
"""Where the issue asks for zero added latency."""


def table(
    results: dict[str, dict[str, dict[int, list[dict]]]], mirror: dict | None, header: str
) -> str:
    """``results[SHADOW_ON | SHADOW_OFF][GATEWAY][concurrency]``: one result per round;
    ``mirror``: the shadow-on gateway's figures after the load (``GET /api/v1/model``)."""
    rows = [
        "| gateway | load | req/s | p50 ms | p99 ms | servers' CPU ms per request | rounds |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    on, off = results[SHADOW_ON][GATEWAY], results[SHADOW_OFF][GATEWAY]
    for concurrency in on:
        medians = {}
        for name, samples in ((SHADOW_ON, on[concurrency]), (SHADOW_OFF, off[concurrency])):
            m = medians[name] = median_result(samples)
            cpu = " · ".join(f"{w} {ms:.2f}" for w, ms in m["cpu_ms_per_request"].items())
            rows.append(
                f"| {name} | concurrency {concurrency} | {_fmt(m.get('throughput'), 1)} | "
                f"{_fmt(m.get('p50_ms'), 2)} | {_fmt(m.get('p99_ms'), 2)} | {cpu} | "
                f"{m['rounds']} |"
            )
        a, b = medians[SHADOW_ON], medians[SHADOW_OFF]
        cpu_on = statistics.median(servers_cpu_ms(s) for s in on[concurrency])
        cpu_off = statistics.median(servers_cpu_ms(s) for s in off[concurrency])
        rows.append(
            f"| on / off | concurrency {concurrency} | {_ratio(a, b, 'throughput')} | "
            f"{_ratio(a, b, 'p50_ms')} | {_ratio(a, b, 'p99_ms')} | "
            f"{cpu_on / cpu_off:.3f} | {len(on[concurrency])} |"
        )
    return header + "\n\n" + "\n".join(rows) + verdict(results, mirror)


def verdict(results: dict[str, dict[str, dict[int, list[dict]]]], mirror: dict | None) -> str:
    parts = []
    on, off = results[SHADOW_ON][GATEWAY], results[SHADOW_OFF][GATEWAY]
    if TARGET_CONCURRENCY in on:
        a = median_result(on[TARGET_CONCURRENCY])
        b = median_result(off[TARGET_CONCURRENCY])
        parts.append(
            f"At concurrency {TARGET_CONCURRENCY}, shadowing on / off: p50 "
            f"{_ratio(a, b, 'p50_ms')}, p99 {_ratio(a, b, 'p99_ms')} (target: no more than 1)."
        )
    if mirror:
        offered = mirror["mirrored"] + mirror["dropped"] + mirror["failed"]
        parts.append(
            f"The mirror compared {mirror['mirrored']:,} of {offered:,} offered predictions "
            f"({mirror['dropped']:,} dropped under load, {mirror['failed']:,} failed), "
            f"agreement {_fmt(mirror['agreement'], 3)} (the challenger is the same model)."
        )
    return "\n\n" + " ".join(parts) if parts else ""
