"""Drift watch: PSI of the latest predictions against the model's training reference, in a
rolling window per version, at /api/v1/monitoring and as Prometheus gauges."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from brainscan_gateway.app import create_app as create_gateway
from brainscan_gateway.prediction.distribution_check import DistributionCheck
from brainscan_gateway.prediction.monitoring import MAJOR_SHIFT, MIN_PREDICTIONS, DriftMonitor, psi
from brainscan_manifest import Manifest
from gateway_images import encode, png_bytes
from gateway_servers import RunningServer, gateway_settings, write_package
from PIL import Image
from prometheus_client import CollectorRegistry, generate_latest

INSIDE = DistributionCheck(in_distribution=True, score=0.5, threshold=1.0, cue="pixels")
OUTSIDE = DistributionCheck(in_distribution=False, score=5.0, threshold=1.0, cue="pixels")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Manifest:
    directory = write_package(tmp_path_factory.mktemp("guarded") / "1", guard=True)
    return Manifest.load(directory / "manifest.json").with_version("1")


def replay(monitor: DriftMonitor, manifest: Manifest, count: int, *, shifted: bool, seed=0):
    """Answers drawn like the reference's (or all one class at full confidence, shifted)."""
    rng = np.random.default_rng(seed)
    ref = manifest.ood.reference
    mix = np.array([ref.class_mix[name] for name in manifest.classes])
    for _ in range(count):
        if shifted:
            label, confidence, intensity, check = 0, 0.999, 0.9, OUTSIDE
        else:
            label = int(rng.choice(len(mix), p=mix))
            confidence = _draw(ref.confidence, rng)
            intensity = _draw(ref.intensity, rng)
            check = INSIDE
        monitor.observe(manifest, "1", label, confidence, intensity, check)


def _draw(histogram, rng) -> float:
    index = rng.choice(len(histogram.shares), p=np.array(histogram.shares) / sum(histogram.shares))
    return float(rng.uniform(histogram.edges[index], histogram.edges[index + 1]))


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_moved_one():
    reference = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(np.array([250, 250, 250, 250]), reference) == pytest.approx(0.0, abs=1e-6)
    assert psi(np.array([1000, 0, 0, 0]), reference) > MAJOR_SHIFT


def test_traffic_like_the_reference_is_stable(manifest):
    monitor = DriftMonitor(window_size=400)
    replay(monitor, manifest, 400, shifted=False)
    (model,) = monitor.report()["models"]
    assert model["status"] == "stable", model["psi"]
    assert all(value < 0.1 for value in model["psi"].values())
    assert model["out_of_distribution"] == {
        "rate": 0.0,
        "expected_rate": manifest.ood.false_alarm_rate,
        "flagged": 0,
        "checked": 400,
    }


def test_a_shifted_stream_is_a_major_shift_once_it_fills_the_window(manifest):
    monitor = DriftMonitor(window_size=100)
    replay(monitor, manifest, 100, shifted=False)
    replay(monitor, manifest, 100, shifted=True)  # pushes every earlier answer out
    (model,) = monitor.report()["models"]
    assert model["predictions"] == 100
    assert model["status"] == "major_shift"
    assert all(value > MAJOR_SHIFT for value in model["psi"].values())
    assert model["out_of_distribution"]["rate"] == 1.0
    assert model["class_mix"]["window"][manifest.classes[0]] == 1.0


def test_few_predictions_are_not_called_a_shift(manifest):
    monitor = DriftMonitor(window_size=500)
    replay(monitor, manifest, MIN_PREDICTIONS - 1, shifted=True)
    assert monitor.report()["models"][0]["status"] == "too_few_predictions"


def test_a_model_without_reference_has_no_drift_but_is_listed(manifest):
    plain = manifest.model_copy(update={"ood": None})
    monitor = DriftMonitor(window_size=10)
    monitor.observe(plain, "1", 0, 0.9, 0.3, DistributionCheck(in_distribution=None))
    (model,) = monitor.report()["models"]
    assert model["status"] == "unavailable" and model["psi"] == {}
    assert model["out_of_distribution"]["rate"] is None


def test_only_the_latest_versions_are_kept(manifest):
    monitor = DriftMonitor(window_size=10, max_versions=2)
    for version in ("1", "2", "3"):
        monitor.observe(manifest.with_version(version), version, 0, 0.9, 0.3, INSIDE)
    assert [m["version"] for m in monitor.report()["models"]] == ["3", "2"]


def test_the_gauges_are_computed_when_scraped(manifest):
    monitor = DriftMonitor(window_size=100)
    registry = CollectorRegistry()
    registry.register(monitor)
    replay(monitor, manifest, 100, shifted=True)
    text = generate_latest(registry).decode()
    assert 'gateway_drift_window_predictions{model_version="1"} 100.0' in text
    assert 'gateway_drift_out_of_distribution_rate{model_version="1"} 1.0' in text
    expected = f"{manifest.ood.false_alarm_rate}"
    assert (
        f'gateway_drift_expected_out_of_distribution_rate{{model_version="1"}} {expected}' in text
    )
    for statistic in ("class_mix", "confidence", "intensity"):
        line = next(
            line
            for line in text.splitlines()
            if line.startswith(f'gateway_drift_psi{{model_version="1",statistic="{statistic}"}}')
        )
        assert float(line.rsplit(" ", 1)[1]) > MAJOR_SHIFT


def test_the_monitoring_endpoint_follows_real_predictions(tmp_path):
    """Real inference (guarded tiny model) and gateway: blank uploads move the window."""
    from brainscan_inference.app import create_app as create_inference
    from gateway_servers import inference_settings

    write_package(tmp_path / "1", guard=True)
    inference = RunningServer(lambda: create_inference(inference_settings(tmp_path))).start()
    gateway = None
    try:
        inference.wait_until("/v2/health/ready")
        settings = gateway_settings(inference.url, drift_window=20)
        gateway = RunningServer(lambda: create_gateway(settings)).start()
        gateway.wait_until("/readyz")
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            blank = encode(Image.new("L", (64, 64), 0), "PNG")
            for data in [png_bytes(96)] * 5 + [blank] * 25:
                assert client.post(
                    "/api/v1/predictions", files={"file": ("a.png", data)}
                ).is_success
            report = client.get("/api/v1/monitoring").json()
    finally:
        if gateway is not None:
            gateway.stop()
        inference.stop()
    assert report["window_size"] == 20 and report["statistic"] == "psi"
    (model,) = report["models"]
    assert model["version"] == "1" and model["predictions"] == 20
    assert model["out_of_distribution"]["rate"] == 1.0  # only blanks are left in the window
    assert set(model["psi"]) == {"class_mix", "confidence", "intensity"}
