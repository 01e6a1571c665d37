"""The prediction's log event: one per prediction, the agreed fields, never patient data."""

import httpx
import structlog
from brainscan_testsupport.dicoms import PATIENT_ID, PATIENT_NAME, mr_dataset, mr_slice, to_bytes
from gateway_dicoms import encoded, enhanced_mr, numbered_frames, with_syntax
from pydicom.uid import MPEG4HP41, JPEGLosslessSV1


def test_one_log_event_per_prediction_without_patient_data(inference, start_gateway):
    gateway = start_gateway(inference.url, log_level="INFO")
    http = httpx.Client(base_url=gateway.url, timeout=30)
    dicom = to_bytes(mr_dataset(mr_slice(96)))
    with structlog.testing.capture_logs() as events, http:
        response = http.post(
            "/api/v1/predictions",
            files={"file": ("a.dcm", dicom)},
            headers={"X-Request-ID": "log-check-1"},
        )
        no_image = to_bytes(mr_dataset(None))
        refused = http.post("/api/v1/predictions", files={"file": ("b.dcm", no_image)})
        # The compressed, multi-frame and enhanced paths, answered and refused, log no more.
        series = to_bytes(enhanced_mr(numbered_frames(3), 1.0, 0.0, [(1500.0, 600.0)] * 3))
        more = [
            http.post("/api/v1/predictions", files={"file": ("c.dcm", encoded(JPEGLosslessSV1))}),
            http.post("/api/v1/predictions", files={"file": ("d.dcm", series)}),
            http.post("/api/v1/predictions?frame=9", files={"file": ("e.dcm", series)}),
            http.post("/api/v1/predictions", files={"file": ("f.dcm", with_syntax(MPEG4HP41))}),
        ]
    assert response.status_code == 200 and refused.status_code == 422
    assert [r.status_code for r in more] == [200, 200, 422, 415]
    predictions = [e for e in events if e["event"] == "prediction"]
    assert len(predictions) == 3
    event = predictions[0]
    body = response.json()
    assert event["prediction.label"] == body["label"]
    assert event["prediction.below_threshold"] == body["uncertain"]
    assert event["prediction.threshold"] == body["threshold"]
    assert abs(event["prediction.confidence"] - body["confidence"]) < 1e-4
    assert event["model.version"] == "1"
    assert event["prediction.image_format"] == "dicom"
    for timing in ("decode_ms", "inference_ms", "total_ms"):
        assert event[f"prediction.latency.{timing}"] >= 0
    refusals = [e for e in events if e["event"] == "request refused"]
    assert [e["error.code"] for e in refusals] == [
        "dicom_no_pixel_data",
        "frame_out_of_range",
        "dicom_unsupported",
    ]
    text = repr(events)
    assert PATIENT_NAME not in text and PATIENT_ID not in text
    assert "Doe" not in text
