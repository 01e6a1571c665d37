"""Whether an upload looks like the model's training images: real inference serving a tiny
model with a real guard, a real gateway, real HTTP; and the check's own rules."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from brainscan_gateway.app import create_app as create_gateway
from brainscan_gateway.prediction.distribution_check import NOT_ASSESSED, check_distribution
from brainscan_gateway.upstream.client import InferenceFailed
from brainscan_inference.app import create_app as create_inference
from brainscan_manifest import Manifest
from brainscan_v2protocol import InferResponse
from gateway_images import encode, png_bytes
from gateway_servers import (
    RunningServer,
    gateway_settings,
    inference_settings,
    write_package,
)
from PIL import Image


@pytest.fixture(scope="module")
def guarded_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("guarded")
    write_package(directory / "1", guard=True)
    return directory


@pytest.fixture(scope="module")
def guarded_inference(guarded_dir) -> Iterator[RunningServer]:
    inference = RunningServer(lambda: create_inference(inference_settings(guarded_dir))).start()
    try:
        inference.wait_until("/v2/health/ready")
        yield inference
    finally:
        inference.stop()


@pytest.fixture(scope="module")
def guarded_gateway(guarded_inference) -> Iterator[RunningServer]:
    settings = gateway_settings(guarded_inference.url, drift_window=50)
    gateway = RunningServer(lambda: create_gateway(settings)).start()
    try:
        gateway.wait_until("/readyz")
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def client(guarded_gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=guarded_gateway.url, timeout=30) as http:
        yield http


def predict(client: httpx.Client, data: bytes) -> dict:
    response = client.post("/api/v1/predictions", files={"file": ("scan.png", data)})
    assert response.status_code == 200, response.text
    return response.json()


def blank_png() -> bytes:
    return encode(Image.new("L", (96, 96), 0), "PNG")


def noise_png() -> bytes:
    pixels = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


def test_a_slice_like_the_training_ones_is_assessed(client):
    body = predict(client, png_bytes(96))
    assert body["in_distribution"] is True and body["assessed"] is True
    assert body["ood"]["score"] <= body["ood"]["threshold"]
    assert body["ood"]["reason"].startswith("the image resembles the images")
    assert body["uncertain"] == (body["confidence"] < body["threshold"])


@pytest.mark.parametrize("upload", [blank_png, noise_png], ids=["blank", "noise"])
def test_an_image_unlike_them_is_not_assessed(client, upload):
    """The label stays in the JSON for audit, but the answer is uncertain and says why."""
    body = predict(client, upload())
    assert body["in_distribution"] is False and body["assessed"] is False
    assert body["uncertain"] is True
    assert body["ood"]["score"] > body["ood"]["threshold"]
    assert body["ood"]["reason"].startswith(NOT_ASSESSED)
    assert body["ood"]["cue"] in {"pixels", "confidence"}
    assert body["label"] in body["probabilities"]


def test_the_model_information_describes_the_guard(client):
    info = client.get("/api/v1/model").json()["ood"]
    assert info["available"] is True
    assert info["threshold"] > 0 and info["false_alarm_rate"] == 0.05
    assert set(info["cues"]) == {"pixels", "confidence"}


def test_a_model_without_reference_is_answered_with_the_check_unavailable(http):
    """The shared gateway serves the tiny model without a guard (conftest)."""
    body = http.post("/api/v1/predictions", files={"file": ("a.png", png_bytes(64))}).json()
    assert body["in_distribution"] is None and body["assessed"] is True
    assert body["ood"]["score"] is None and "cannot be checked" in body["ood"]["reason"]
    assert http.get("/api/v1/model").json()["ood"] == {
        "available": False,
        "threshold": None,
        "false_alarm_rate": None,
        "cues": {},
        "method": None,
        "metrics": {},
    }


def test_the_verdict_is_counted_and_logged(guarded_inference, start_gateway, capsys):
    gateway = start_gateway(guarded_inference.url, log_level="INFO")  # logs into this capture
    capsys.readouterr()
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        before = client.get("/metrics").text
        predict(client, png_bytes(96))
        predict(client, blank_png())
        after = client.get("/metrics").text
    for result in ("in_distribution", "out_of_distribution"):
        line = f'gateway_ood_checks_total{{model_version="1",result="{result}"}}'
        assert _value(after, line) == _value(before, line) + 1
    events = _prediction_events(capsys)
    flagged = [e for e in events if e["prediction"].get("in_distribution") is False]
    assert flagged and flagged[-1]["prediction"]["assessed"] is False
    assert flagged[-1]["prediction"]["ood_reason"] in {"pixels", "confidence"}
    assert flagged[-1]["prediction"]["ood_score"] > flagged[-1]["prediction"]["ood_threshold"]


def _value(metrics_text: str, line_start: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _prediction_events(capsys) -> list[dict]:
    deadline = time.monotonic() + 10
    events: list[dict] = []
    while time.monotonic() < deadline:
        for line in capsys.readouterr().out.splitlines():
            if line.startswith("{") and '"message":"prediction"' in line:
                events.append(json.loads(line))
        if len(events) >= 2:
            break
        time.sleep(0.05)
    return events


# --- the check's own rules ------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded_manifest(guarded_dir) -> Manifest:
    return Manifest.load(guarded_dir / "1" / "manifest.json")


def result(**outputs) -> InferResponse:
    return InferResponse("tiny-brainscan", "1", {k: np.asarray(v) for k, v in outputs.items()})


def test_a_score_at_the_threshold_is_still_in_distribution(guarded_manifest):
    threshold = guarded_manifest.ood.threshold
    check = check_distribution(
        result(ood_score=[threshold], ood_cues=[[threshold, 0.0]]), guarded_manifest
    )
    assert check.in_distribution is True and check.cue == "pixels"


def test_the_strongest_cue_names_the_reason(guarded_manifest):
    check = check_distribution(result(ood_score=[9.0], ood_cues=[[0.5, 9.0]]), guarded_manifest)
    assert check.in_distribution is False and check.cue == "confidence"
    assert "cannot settle on any class" in check.reason


@pytest.mark.parametrize(
    "outputs",
    [{}, {"ood_score": [1.0]}, {"ood_score": [np.nan], "ood_cues": [[0.1, 0.2]]}],
    ids=["no guard outputs", "no cues", "not finite"],
)
def test_a_promised_guard_that_answers_nothing_usable_is_a_fault(guarded_manifest, outputs):
    """A model that carries a guard must answer it: its absence fails, it never passes."""
    with pytest.raises(InferenceFailed):
        check_distribution(result(**outputs), guarded_manifest)


def test_an_upload_of_unlike_proportions_is_not_assessed(guarded_manifest):
    """The graph sees the resized input, where a squashed upload looks normal: the gateway
    checks the upload's own width-to-height ratio against the training images'."""
    from brainscan_manifest.ood import AspectRange

    ood = guarded_manifest.ood.model_copy(update={"aspect_ratio": AspectRange(low=0.7, high=1.4)})
    manifest = guarded_manifest.model_copy(update={"ood": ood})
    quiet = result(ood_score=[0.1], ood_cues=[[0.1, 0.05]])
    assert check_distribution(quiet, manifest, (256, 256)).in_distribution is True
    squashed = check_distribution(quiet, manifest, (256, 112))
    assert squashed.in_distribution is False and squashed.cue == "proportions"
    assert "width-to-height ratio is unlike" in squashed.reason and "(2.29" in squashed.reason
    assert check_distribution(quiet, manifest).in_distribution is True  # size unknown
