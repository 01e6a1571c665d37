"""GET /api/v1/model, health, metrics, docs and framework errors, over real HTTP."""

import httpx
from gateway_images import png_bytes


def test_model_describes_what_is_served(http):
    body = http.get("/api/v1/model").json()
    assert body["name"] == "tiny-brainscan" and body["version"] == "1"
    assert body["classes"] == ["glioma", "meningioma", "notumor", "pituitary"]
    assert body["input"]["height"] == 16 and body["input"]["dtype"] == "uint8"
    assert body["thresholds"]["default"] == 0.5
    assert body["thresholds"]["per_class"] == dict.fromkeys(body["classes"], 0.5)
    assert body["explain_available"] is True
    assert body["metrics"] == {"macro_f1": 0.5}
    assert body["uploads"]["formats"] == ["jpeg", "png", "dicom"]


def test_thresholds_from_settings_override_the_manifest(inference, start_gateway):
    gateway = start_gateway(
        inference.url,
        default_threshold=0.3,
        class_thresholds={
            "glioma": 0.99,
            "meningioma": 0.99,
            "notumor": 0.99,
            "pituitary": 0.99,
            "astrocytoma": 0.4,
        },
    )
    info = httpx.get(f"{gateway.url}/api/v1/model").json()["thresholds"]
    assert info["default"] == 0.3
    assert info["per_class"]["glioma"] == 0.99
    assert info["ignored_overrides"] == ["astrocytoma"]
    body = httpx.post(
        f"{gateway.url}/api/v1/predictions", files={"file": ("a.png", png_bytes(64))}
    ).json()
    # Every class demands 0.99, so this tiny model's answer is flagged for manual review.
    assert body["threshold"] == 0.99 and body["uncertain"] is True
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert f'gateway_predictions_below_threshold_total{{label="{body["label"]}"}} 1.0' in metrics


def test_health_endpoints(http):
    assert http.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = http.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["checks"] == {"inference": "ready", "model": "tiny-brainscan 1"}


def test_metrics_count_requests_predictions_and_confidence(http):
    http.post("/api/v1/predictions", files={"file": ("a.png", png_bytes(64))})
    http.post("/api/v1/predictions", files={"file": ("a.txt", b"hello")})
    text = http.get("/metrics").text
    for name in (
        "gateway_http_requests_total",
        "gateway_http_request_duration_seconds_bucket",
        "gateway_predictions_total",
        "gateway_prediction_confidence_bucket",
        "gateway_prediction_phase_duration_seconds_bucket",
        "gateway_rejected_requests_total",
        "gateway_circuit_breaker_state",
    ):
        assert name in text, name
    assert 'method="POST",route="/api/v1/predictions",status="200"' in text
    assert 'gateway_rejected_requests_total{code="unsupported_format"}' in text


def test_docs_work_offline(http):
    page = http.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower()
    assert http.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert http.get("/openapi.json").json()["info"]["title"] == "brainscan gateway"


def test_docs_can_be_turned_off(inference, start_gateway):
    gateway = start_gateway(inference.url, docs_enabled=False)
    assert httpx.get(f"{gateway.url}/docs").status_code == 404
    assert httpx.get(f"{gateway.url}/openapi.json").status_code == 404


def test_unknown_path_is_404_in_our_shape(http):
    response = http.get("/api/v1/nothing-here")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["request_id"] == response.headers["x-request-id"]


def test_wrong_method_is_405_in_our_shape(http):
    response = http.get("/api/v1/predictions")
    assert response.status_code == 405
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed" and "POST" in error["message"]
    assert response.headers["allow"] == "POST"
