"""End to end through the images: a model registered in the containerised MLflow and promoted
there is verified by model-sync, loaded by both inference replicas and answers a prediction sent
from the host to the gateway container. Tests run in file order (the registry fills as they go).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
MODEL = "brainscan-mobilenetv2"
CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
SERVICES = ["mlflow", "model-sync", "inference", "gateway"]
# Registry -> model-sync (webhook, verify) -> inference (long poll, load, warm-up) -> gateway.
ROLLOUT_TIMEOUT = 120.0


def _png() -> bytes:
    """A 160x160 grey scan-like image (a bright disc on dark), as a client would upload."""
    yy, xx = np.mgrid[0:160, 0:160]
    disc = ((yy - 80) ** 2 + (xx - 76) ** 2 < 55**2) * 150 + 20
    noise = np.random.default_rng(3).integers(0, 20, (160, 160))
    buffer = io.BytesIO()
    Image.fromarray((disc + noise).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def _served_by_gateway(stack, version: str):
    status, body = stack.gateway_readiness()
    return status == 200 and body["checks"]["model"] == f"{MODEL} {version}"


@pytest.fixture(scope="module")
def first_version(stack, model_package) -> str:
    """Register the package as a challenger, then promote it to production (checks run)."""
    registered = stack.train_cli(
        "register-external",
        "--onnx", str(model_package / "model.onnx"),
        "--manifest", str(model_package / "manifest.json"),
    )  # fmt: skip
    version = str(registered["version"])
    promoted = stack.train_cli("--model", MODEL, "promote", "--version", version)
    assert promoted["promoted"] is True, promoted
    stack.wait_for(
        lambda: _served_by_gateway(stack, version), ROLLOUT_TIMEOUT, f"gateway serving v{version}"
    )
    return version


def test_every_container_is_healthy_and_unprivileged(stack):
    for service in SERVICES:
        names = stack.names(service)
        assert len(names) == (2 if service == "inference" else 1), (service, names)
        for name in names:
            assert stack.exec(name, "id", "-u").stdout.strip() == "10001", name
            assert (
                stack.exec(
                    name, "python3", "/usr/local/lib/brainscan/healthcheck.py", "X", "0", "/"
                ).returncode
                == 1
            )  # the probe fails on a dead port: it is not a no-op


def test_images_carry_oci_labels(stack):
    for container in stack.containers():
        if container["Labels"].get("io.podman.compose.service") == "training":
            continue
        image = container["Image"]
        labels = stack.image_labels(image)
        for key in ("source", "revision", "version", "created", "title"):
            assert labels.get(f"org.opencontainers.image.{key}"), (image, key)


def test_gateway_is_not_ready_before_a_model_is_promoted(stack):
    status, body = stack.gateway_readiness()
    assert status == 503
    assert body["checks"]["inference"] == "not ready"


def test_promoted_model_answers_a_prediction_from_the_host(stack, first_version):
    request_id = f"e2e-{uuid.uuid4()}"
    response = httpx.post(
        f"{stack.url('gateway')}/api/v1/predictions",
        params={"explain": "true"},
        files={"file": ("scan.png", _png(), "image/png")},
        headers={"X-Request-ID": request_id},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == request_id
    prediction = response.json()
    assert prediction["model"] == {"name": MODEL, "version": first_version, "role": "production"}
    assert prediction["label"] in CLASSES
    assert list(prediction["probabilities"]) == CLASSES
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    # The package is an untrained network: four equal probabilities, below the threshold.
    assert prediction["uncertain"] is True
    assert prediction["activation_map"]["overlay_png"]


def test_bad_upload_gets_a_clear_4xx_through_the_containers(stack, first_version):
    response = httpx.post(
        f"{stack.url('gateway')}/api/v1/predictions",
        files={"file": ("notes.txt", b"not an image at all", "text/plain")},
        timeout=30,
    )
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"]


def test_both_inference_replicas_load_the_promoted_version(stack, first_version):
    probe = (
        "import json, urllib.request; print(json.load(urllib.request.urlopen("
        f"'http://127.0.0.1:8001/v2/models/{MODEL}', timeout=5))['versions'])"
    )
    for name in stack.names("inference"):
        versions = stack.wait_for(
            lambda name=name: (
                (out := stack.exec(name, "python3", "-c", probe)).returncode == 0
                and first_version in out.stdout
                and out.stdout
            ),
            ROLLOUT_TIMEOUT,
            f"{name} serving v{first_version}",
        )
        assert first_version in versions


def test_model_sync_follows_the_registry_by_webhook(stack, first_version):
    body = httpx.get(f"{stack.url('model-sync')}/readyz", timeout=10).json()
    assert body["ready"] is True
    assert body["webhook"]["state"] == "registered", body["webhook"]
    assert body["models"][MODEL]["version"] == first_version


def test_the_ci_smoke_test_passes_against_the_gateway_container(stack, first_version):
    result = subprocess.run(
        [sys.executable, str(REPO / "ci/smoke_test.py"), "--url", stack.url("gateway"),
         "--timeout", "60"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"] == {"name": MODEL, "version": first_version, "role": "production"}
    assert summary["label"] in CLASSES


def test_a_new_version_rolls_out_and_rolls_back(stack, model_package, first_version):
    second = str(
        stack.train_cli(
            "register-external",
            "--onnx", str(model_package / "model.onnx"),
            "--manifest", str(model_package / "manifest.json"),
        )["version"]
    )  # fmt: skip
    assert second != first_version
    stack.train_cli("--model", MODEL, "promote", "--version", second)
    stack.wait_for(lambda: _served_by_gateway(stack, second), ROLLOUT_TIMEOUT, f"v{second}")

    stack.train_cli("--model", MODEL, "rollback", "--to", first_version)
    stack.wait_for(lambda: _served_by_gateway(stack, first_version), ROLLOUT_TIMEOUT, "rollback")
