"""A real Prometheus (Debian's 2.42 binary) with the stack's rules scrapes real services: the
gateway, inference on the tiny ONNX model of the gateway tests, and model-sync, all in this
process on free loopback ports. Its HTTP API must show every target up, every rule loaded and
evaluating without error, the gateway's series moving with the predictions sent, and the error
alerts turning pending when requests really fail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import prometheus_rules as pr
import pytest
import yaml
from brainscan_gateway.app import create_app as create_gateway
from brainscan_inference.app import create_app as create_inference
from brainscan_modelsync.app import create_app as create_modelsync
from brainscan_training.processes import free_port
from gateway_images import png_bytes
from gateway_servers import (
    MODEL_NAME,
    RunningServer,
    gateway_settings,
    inference_settings,
    write_package,
)
from modelsync_servers import modelsync_settings
from prometheus_server import PrometheusServer, eventually

pytestmark = pytest.mark.slow

WAIT = 60.0  # seconds any one condition may take (scrapes and evaluations run every second)


@dataclass
class Stack:
    prometheus: PrometheusServer
    gateway: RunningServer
    inference: RunningServer
    modelsync: RunningServer


def _server(stack: ExitStack, app_factory: Callable[[], object], ready: str) -> RunningServer:
    server = RunningServer(app_factory)
    stack.callback(server.stop)
    server.start().wait_until(ready)
    return server


@pytest.fixture
def start_stack(tmp_path_factory) -> Iterator[Callable[..., Stack]]:
    """``start_stack(gateway_inference_url=None)``: inference, gateway, model-sync and
    Prometheus scraping them; everything is stopped afterwards, whatever happened."""
    with ExitStack() as stack:
        # model-sync sets MLflow's client variables process-wide: put them back afterwards.
        environment = dict(os.environ)
        stack.callback(lambda: (os.environ.clear(), os.environ.update(environment)))

        def start(gateway_inference_url: str | None = None) -> Stack:
            work = tmp_path_factory.mktemp("prometheus-stack")
            write_package(work / "models" / "1")
            inference = _server(
                stack,
                lambda: create_inference(inference_settings(work / "models")),
                "/v2/health/ready",
            )
            upstream = gateway_inference_url or inference.url
            gateway = _server(
                stack,
                lambda: create_gateway(gateway_settings(upstream)),
                "/readyz" if gateway_inference_url is None else "/healthz",
            )
            # An MLflow that is not there: model-sync runs, retries and says so in its metrics.
            no_registry = f"http://127.0.0.1:{free_port()}"
            settings = modelsync_settings(no_registry, MODEL_NAME, work / "cache")
            modelsync = _server(stack, lambda: create_modelsync(settings), "/healthz")
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
            return Stack(prometheus, gateway, inference, modelsync)

        yield start


@pytest.fixture
def stack(start_stack) -> Stack:
    return start_stack()


def _predict(gateway: RunningServer, count: int) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        for _ in range(count):
            answer = client.post("/api/v1/predictions", files={"file": ("s.png", png_bytes(32))})
            assert answer.status_code == 200, answer.text


GATEWAY_PREDICTIONS = 'sum(gateway_predictions_total{job="gateway", model_version="1"})'
INFERENCE_SUCCESSES = 'sum(brainscan_inference_requests_total{job="inference", outcome="success"})'


def _predict_across_scrapes(stack: Stack, count: int) -> float:
    """``count`` predictions, the first scraped (from gateway and inference) before the others
    are sent, so that rates over them are not zero; waits until Prometheus has all of them and
    returns the gateway's prediction count from before."""
    prom = stack.prometheus
    before = prom.value(GATEWAY_PREDICTIONS) or 0.0
    served = prom.value(INFERENCE_SUCCESSES) or 0.0
    _predict(stack.gateway, 1)
    eventually(
        lambda: (
            (prom.value(GATEWAY_PREDICTIONS), prom.value(INFERENCE_SUCCESSES))
            == (before + 1, served + 1)
        ),
        WAIT,
        "the first prediction scraped",
    )
    _predict(stack.gateway, count - 1)
    eventually(
        lambda: prom.value(GATEWAY_PREDICTIONS) == before + count, WAIT, "all predictions scraped"
    )
    return before


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
    before = _predict_across_scrapes(stack, 5)
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
