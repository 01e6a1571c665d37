"""A real Prometheus (Debian's 2.42 binary) with the stack's rules scrapes real services: the
gateway, inference on the tiny ONNX model of the gateway tests, and model-sync, all in this
process on free loopback ports. Its HTTP API must show every target up, every rule loaded and
evaluating without error, the gateway's series moving with the predictions sent, the error
alerts turning pending when requests really fail, and, with a guarded model, the drift gauges
following real out-of-distribution traffic and the model-quality alerts turning pending.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import prometheus_rules as pr
import pytest
import yaml
from brainscan_gateway.app import create_app as create_gateway
from brainscan_inference.app import create_app as create_inference
from brainscan_localstack.processes import free_port
from brainscan_manifest import MANIFEST_FILE, Manifest
from brainscan_modelsync.app import create_app as create_modelsync
from gateway_images import encode, mri_like, png_bytes
from gateway_servers import (
    MODEL_NAME,
    RunningServer,
    gateway_settings,
    inference_settings,
    write_package,
)
from modelsync_servers import modelsync_settings
from PIL import Image
from prometheus_server import PrometheusServer, eventually

pytestmark = pytest.mark.slow

WAIT = 60.0  # seconds any one condition may take (scrapes and evaluations run every second)


@dataclass
class Stack:
    prometheus: PrometheusServer
    gateway: RunningServer
    inference: RunningServer
    modelsync: RunningServer
    model_dir: Path


def _server(stack: ExitStack, app_factory: Callable[[], object], ready: str) -> RunningServer:
    server = RunningServer(app_factory)
    stack.callback(server.stop)
    server.start().wait_until(ready)
    return server


@pytest.fixture
def start_stack(tmp_path_factory) -> Iterator[Callable[..., Stack]]:
    """``start_stack(gateway_inference_url=None, guard=False, challenger=False,
    **gateway_settings)``: inference (the tiny model, with an out-of-distribution guard if
    ``guard``, and a copy of it as the challenger in shadow if ``challenger``), gateway,
    model-sync and Prometheus scraping them; everything is stopped afterwards, whatever
    happened."""
    with ExitStack() as stack:
        # model-sync sets MLflow's client variables process-wide: put them back afterwards.
        environment = dict(os.environ)
        stack.callback(lambda: (os.environ.clear(), os.environ.update(environment)))

        def start(
            gateway_inference_url: str | None = None,
            *,
            guard: bool = False,
            challenger: bool = False,
            **gateway: object,
        ) -> Stack:
            work = tmp_path_factory.mktemp("prometheus-stack")
            write_package(work / "models" / "1", guard=guard)
            settings = inference_settings(work / "models")
            if challenger:  # the same model again, as version 2, held in shadow
                write_package(work / "challenger" / "2", guard=guard)
                settings = settings.model_copy(update={"challenger_dir": work / "challenger"})
            inference = _server(stack, lambda: create_inference(settings), "/v2/health/ready")
            upstream = gateway_inference_url or inference.url
            gateway = _server(
                stack,
                lambda: create_gateway(gateway_settings(upstream, **gateway)),
                "/readyz" if gateway_inference_url is None else "/healthz",
            )
            # An MLflow that is not there: model-sync runs, retries and says so in its metrics.
            no_registry = f"http://127.0.0.1:{free_port()}"
            sync_settings = modelsync_settings(no_registry, MODEL_NAME, work / "cache")
            modelsync = _server(stack, lambda: create_modelsync(sync_settings), "/healthz")
            targets = {
                name: [server.url.removeprefix("http://")]
                for name, server in (
                    ("gateway", gateway),
                    ("inference", inference),
                    ("model-sync", modelsync),
                )
            }
            prometheus = stack.enter_context(PrometheusServer(work / "prometheus", targets))
            # Tests start from a first successful scrape of everything (counts "before").
            prometheus.wait_until_scraped(WAIT)
            return Stack(prometheus, gateway, inference, modelsync, work / "models" / "1")

        yield start


@pytest.fixture
def stack(start_stack) -> Stack:
    return start_stack()


def _predict(gateway: RunningServer, uploads: list[bytes]) -> list[dict]:
    """The gateway's answers to ``uploads``, each a PNG file."""
    answers = []
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        for data in uploads:
            answer = client.post("/api/v1/predictions", files={"file": ("s.png", data)})
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
    return answers


GATEWAY_PREDICTIONS = 'sum(gateway_predictions_total{job="gateway", model_version="1"})'
INFERENCE_SUCCESSES = 'sum(brainscan_inference_requests_total{job="inference", outcome="success"})'


def _predict_across_scrapes(stack: Stack, uploads: list[bytes] | int) -> list[dict]:
    """Predictions of ``uploads`` (or of that many small slices), the first scraped (from
    gateway and inference) before the others are sent, so that rates over them are not zero;
    waits until Prometheus has all of them and returns the answers."""
    if isinstance(uploads, int):
        uploads = [png_bytes(32)] * uploads
    prom = stack.prometheus
    before = prom.value(GATEWAY_PREDICTIONS) or 0.0
    served = prom.value(INFERENCE_SUCCESSES) or 0.0
    answers = _predict(stack.gateway, uploads[:1])
    # At least one more inference success, not exactly one: what matters is that a scrape saw
    # the first answer, and inference may count more (a re-sent request, another caller).
    eventually(
        lambda: (
            prom.value(GATEWAY_PREDICTIONS) == before + 1
            and (prom.value(INFERENCE_SUCCESSES) or 0.0) >= served + 1
        ),
        WAIT,
        "the first prediction scraped",
    )
    answers += _predict(stack.gateway, uploads[1:])
    eventually(
        lambda: prom.value(GATEWAY_PREDICTIONS) == before + len(uploads),
        WAIT,
        "all predictions scraped",
    )
    return answers


def test_prometheus_scrapes_every_service(stack):
    jobs = {
        job["job_name"] for job in yaml.safe_load(pr.COMPOSE_CONFIG.read_text())["scrape_configs"]
    }
    assert jobs == {"gateway", "inference", "model-sync", "prometheus"}
    # One target per job, each up (the compose file's jobs, with loopback targets).
    assert stack.prometheus.targets() == {job: ["up"] for job in jobs}
    # Each service's own series arrive under its job.
    assert stack.prometheus.value('brainscan_inference_ready{job="inference"}') == 1
    assert (
        stack.prometheus.value('gateway_circuit_breaker_state{job="gateway", state="closed"}') == 1
    )
    eventually(
        lambda: stack.prometheus.value('brainscan_modelsync_registry_up{job="model-sync"}') == 0,
        WAIT,
        "model-sync reports its registry down",
    )


def test_every_rule_is_loaded_and_evaluates_cleanly(stack):
    def groups() -> list[dict]:
        return stack.prometheus.api("rules")["groups"]

    eventually(
        lambda: all(r["health"] == "ok" for g in groups() for r in g["rules"]),
        WAIT,
        "every rule evaluated",
    )
    loaded = {g["name"]: [r["name"] for r in g["rules"]] for g in groups()}
    expected = {
        g["name"]: [r.get("alert") or r["record"] for r in g["rules"]]
        for g in pr.load_rules()["groups"]
    }
    assert loaded == expected
    errors = [
        (r["name"], r.get("lastError")) for g in groups() for r in g["rules"] if r.get("lastError")
    ]
    assert errors == []


def test_predictions_move_the_gateway_series_and_the_recording_rules(stack):
    before = stack.prometheus.value(GATEWAY_PREDICTIONS) or 0.0
    _predict_across_scrapes(stack, 5)
    assert stack.prometheus.value(GATEWAY_PREDICTIONS) == before + 5
    labels = stack.prometheus.query('gateway_predictions_total{job="gateway"}')
    assert {dict(key)["model_version"] for key in labels} == {"1"}
    # The rules select these real series: their results exist (0 failed, a finite p99).
    prom = stack.prometheus
    eventually(
        lambda: prom.value("namespace:gateway_http_requests_5xx:ratio_rate5m") == 0,
        WAIT,
        "5xx share recorded as 0",
    )
    p99 = (
        "namespace_route:gateway_http_request_duration_seconds:p99_rate5m"
        '{route="/api/v1/predictions"}'
    )
    eventually(lambda: 0 < (prom.value(p99) or 0) <= 10, WAIT, "p99 of predictions recorded")
    failed = (
        "namespace_model_version:brainscan_inference_requests_failed:ratio_rate5m"
        f'{{model="{MODEL_NAME}", version="1"}}'
    )
    eventually(lambda: prom.value(failed) == 0, WAIT, "inference failure share recorded as 0")
    assert prom.alerts("BrainscanGatewayErrorRateHigh") == []
    assert prom.alerts("BrainscanInferenceErrorRateHigh") == []


def test_real_failures_make_the_error_alerts_pending(start_stack):
    """A gateway whose inference is gone answers 5xx; requests inference cannot read are its
    client errors: both alerts' expressions hold on these real series (pending, for 5 m)."""
    stack = start_stack(gateway_inference_url=f"http://127.0.0.1:{free_port()}")
    prom = stack.prometheus
    infer = f"{stack.inference.url}/v2/models/{MODEL_NAME}/infer"

    def fail_once() -> None:
        answer = httpx.post(
            f"{stack.gateway.url}/api/v1/predictions", files={"file": png_bytes(32)}, timeout=30
        )
        assert answer.status_code >= 500, answer.text
        assert httpx.post(infer, json={"inputs": []}, timeout=10).status_code == 400

    def pending(name: str, **labels: str) -> bool:
        fail_once()  # keep failing until Prometheus has seen it across scrapes
        return any(
            a["state"] == "pending" and labels.items() <= a["labels"].items()
            for a in prom.alerts(name)
        )

    eventually(lambda: pending("BrainscanGatewayErrorRateHigh"), WAIT, "gateway 5xx alert")
    eventually(
        lambda: pending("BrainscanInferenceErrorRateHigh", model=MODEL_NAME, version="1"),
        WAIT,
        "inference error alert",
    )
    (alert,) = prom.alerts("BrainscanGatewayErrorRateHigh")
    assert alert["labels"]["severity"] == "critical"
    assert "of gateway API requests fail with 5xx" in alert["annotations"]["summary"]


def test_gateway_ood_metrics_reach_prometheus(stack):
    """Issue 12's metrics, scraped from the real gateway. The tiny model carries no training
    reference, so every check is "unavailable" and the guard-unavailable alert turns pending."""
    prom = stack.prometheus
    checks = 'sum(gateway_ood_checks_total{job="gateway", model_version="1", result="unavailable"})'
    before = prom.value(checks) or 0.0
    _predict_across_scrapes(stack, 3)
    eventually(lambda: prom.value(checks) == before + 3, 20, "unavailable checks counted")
    assert prom.query('gateway_prediction_confidence_bucket{job="gateway", model_version="1"}')
    window = 'max(gateway_drift_window_predictions{job="gateway", model_version="1"})'
    eventually(lambda: (prom.value(window) or 0) >= 3, 20, "the drift window counts them")
    unavailable = (
        'namespace_model_version:gateway_ood_checks_unavailable:ratio_rate5m{model_version="1"}'
    )
    eventually(lambda: prom.value(unavailable) == 1, 20, "unavailable share recorded")
    eventually(
        lambda: any(a["state"] == "pending" for a in prom.alerts("BrainscanOodGuardUnavailable")),
        20,
        "guard-unavailable alert pending",
    )


# --- a guarded model: real out-of-distribution traffic -------------------------------------------

OOD_ALERT = "BrainscanOutOfDistributionRateHigh"


def _matched_values(metric: str, label: str) -> dict[str, str]:
    """``label`` value -> name of the rule, for each `metric{label="value"}` the rules select."""
    return {
        value: rule.get("alert") or rule["record"]
        for rule in pr.rules()
        for selector in pr.selectors(rule["expr"])
        if selector.name == metric
        for name, op, value in selector.matchers
        if name == label and op == "="
    }


# statistic -> the alert on its PSI, as the rules select them.
DRIFT_ALERTS = _matched_values("gateway_drift_psi", "statistic")


def _alert_expr(name: str) -> str:
    (alert,) = [rule for rule in pr.alerts() if rule["alert"] == name]
    return alert["expr"]


def _number_after(pattern: str, expr: str) -> float:
    match = re.search(pattern + r"\s*([0-9.]+)", expr)
    assert match, f"no {pattern!r} in {expr}"
    return float(match.group(1))


def _calibration_slices(count: int) -> list[bytes]:
    """PNGs of the last ``count`` MRI-like slices ``write_package(guard=True)`` fits its guard
    on (``gateway_servers.in_distribution_inputs``; the second half calibrates it and is the
    drift reference): traffic like the reference."""
    sides = np.linspace(40, 320, 240)
    slices = [mri_like(int(side), seed) for seed, side in enumerate(sides)][-count:]
    return [encode(Image.fromarray(pixels), "PNG") for pixels in slices]


def _flat_images(count: int) -> list[bytes]:
    """Black and white images in turn: blank or blown-out uploads, nothing like a slice."""
    flat = [encode(Image.new("L", (96, 96), value), "PNG") for value in (0, 255)]
    return [flat[index % 2] for index in range(count)]


def test_out_of_distribution_traffic_moves_the_drift_gauges_and_makes_the_alerts_pending(
    start_stack,
):
    """The tiny model with a real guard, the gateway's drift window as small as the drift
    alerts allow. A window of slices like the guard's reference is stable and raises nothing;
    a burst of flat images (enough for the alerts' minimum window and minimum checked) replaces
    it: the PSI of every statistic and the window's out-of-distribution share reach Prometheus
    as the gateway computes them, above the rules' thresholds, and the out-of-distribution and
    the three drift alerts turn pending. Their `for` (10 and 15 minutes) is too long for a live
    test: firing is proved by promtool (test_alert_rules.py)."""
    psi_limit = {s: _number_after(r"\)\s*>", _alert_expr(a)) for s, a in DRIFT_ALERTS.items()}
    window = max(
        int(_number_after(r"gateway_drift_window_predictions\s*>=", _alert_expr(alert)))
        for alert in DRIFT_ALERTS.values()
    )
    min_checked = _number_after(r"checked:increase10m\s*>=", _alert_expr(OOD_ALERT))
    assert window >= min_checked  # one full window of answers is enough for both
    stack = start_stack(guard=True, drift_window=window)
    prom = stack.prometheus
    guard = Manifest.load(stack.model_dir / MANIFEST_FILE).ood
    version = '{job="gateway", model_version="1"}'
    checks = f"sum by (result) (gateway_ood_checks_total{version})"

    def psi() -> dict[str, float]:
        values = prom.query(f"gateway_drift_psi{version}")
        return {dict(labels)["statistic"]: value for labels, value in values.items()}

    def gateway_report() -> dict:
        (model,) = httpx.get(f"{stack.gateway.url}/api/v1/monitoring", timeout=10).json()["models"]
        return model

    def scraped(counts: dict[str, int], ood_rate: float) -> bool:
        results = {dict(labels)["result"]: value for labels, value in prom.query(checks).items()}
        return (
            results == {result: n for result, n in counts.items() if n}
            and prom.value(f"gateway_drift_window_predictions{version}") == window
            and prom.value(f"gateway_drift_out_of_distribution_rate{version}") == ood_rate
            and psi() == pytest.approx(gateway_report()["psi"], rel=1e-9)
        )

    # A window like the reference: stable, about the calibrated false-alarm rate flagged.
    answers = _predict_across_scrapes(stack, _calibration_slices(window))
    flagged = sum(answer["in_distribution"] is False for answer in answers)
    assert all(answer["in_distribution"] is not None for answer in answers)
    counts = {"in_distribution": window - flagged, "out_of_distribution": flagged}
    eventually(lambda: scraped(counts, flagged / window), WAIT, "the stable window scraped")
    stable = psi()
    # The gateway exports exactly the statistics the drift alerts select.
    assert sorted(stable) == sorted(DRIFT_ALERTS) == ["class_mix", "confidence", "intensity"]
    assert all(stable[s] < psi_limit[s] for s in DRIFT_ALERTS), stable
    assert prom.value(f"gateway_drift_expected_out_of_distribution_rate{version}") == (
        guard.false_alarm_rate
    )
    # Never true so far: no window of `window` answers had drifted.
    assert all(prom.alerts(name) == [] for name in DRIFT_ALERTS.values())

    # The burst: every answer out of distribution, the window nothing but flat images.
    answers = _predict_across_scrapes(stack, _flat_images(window))
    assert all(answer["in_distribution"] is False for answer in answers)
    counts = {"in_distribution": window - flagged, "out_of_distribution": flagged + window}
    eventually(lambda: scraped(counts, 1.0), WAIT, "the out-of-distribution window scraped")
    # The rules select the verdicts by the gateway's real `result` values ("unavailable": the
    # guard-less test above).
    results = {dict(labels)["result"] for labels in prom.query(checks)}
    assert results == {"in_distribution", "out_of_distribution"}
    assert set(_matched_values("gateway_ood_checks_total", "result")) - {"unavailable"} <= results
    drifted = psi()
    for statistic in DRIFT_ALERTS:
        assert drifted[statistic] > max(psi_limit[statistic], stable[statistic]), drifted
    # The recording rules the out-of-distribution alert compares, from these real series.
    threshold = "namespace_model_version:gateway_ood_out_of_distribution_rate:alert_threshold"
    share = "namespace_model_version:gateway_ood_checks_out_of_distribution:ratio_rate5m"
    checked = "namespace_model_version:gateway_ood_checks_checked:increase10m"
    eventually(
        lambda: prom.value(threshold) == max(5 * guard.false_alarm_rate, 0.05),
        WAIT,
        "the alert threshold recorded from the calibrated rate",
    )
    eventually(
        lambda: (
            (prom.value(share) or 0) > prom.value(threshold)
            and (prom.value(checked) or 0) >= min_checked
        ),
        WAIT,
        "the out-of-distribution share recorded above the threshold",
    )

    def pending(name: str) -> bool:
        alerts = prom.alerts(name)
        assert all(a["labels"]["model_version"] == "1" for a in alerts), alerts
        return [a["state"] for a in alerts] == ["pending"]

    for name in [OOD_ALERT, *DRIFT_ALERTS.values()]:
        eventually(lambda name=name: pending(name), WAIT, f"{name} pending")
    (alert,) = prom.alerts(OOD_ALERT)
    assert float(alert["value"]) > prom.value(threshold)


# --- the challenger in shadow: the evidence the promotion gate reads ------------------------------
def test_shadow_figures_reach_prometheus_and_the_promotion_gate_reads_them(start_stack):
    """A copy of the served model in shadow: every mirrored prediction agrees. Prometheus sums
    the gateway's counters, the recording rules turn them into the pairs and the agreement
    per challenger version, and `brainscan-train promote`'s Prometheus source reads the same
    figures as the gateway reports."""
    from brainscan_training.shadow_evidence import read_evidence

    stack = start_stack(challenger=True, shadow_refresh_seconds=0.2)
    prom = stack.prometheus

    def shadow() -> dict | None:
        return httpx.get(f"{stack.gateway.url}/api/v1/model", timeout=10).json()["shadow"]

    eventually(lambda: shadow() is not None, WAIT, "the gateway mirroring to version 2")
    _predict(stack.gateway, [png_bytes(size) for size in (40, 48, 56, 64, 72, 80)])
    eventually(lambda: shadow()["mirrored"] == 6, WAIT, "6 predictions compared")
    version = '{challenger_version="2"}'
    eventually(
        lambda: (
            prom.value(f"brainscan:shadow_pairs:total{version}") == 6
            and prom.value(f"brainscan:shadow_agreement:ratio{version}") == 1.0
        ),
        WAIT,
        "the recording rules over 6 agreeing pairs",
    )
    evidence = read_evidence("prometheus", prom.url, "2")
    assert (evidence.mirrored, evidence.agreed) == (6, 6)
    assert evidence.source == f"prometheus {prom.url}"
