"""POST /api/v1/predictions/{request_id}/feedback over real HTTP, real inference behind.

What each bad input gets:

| input                                   | status | error.code          |
|-----------------------------------------|--------|---------------------|
| a request ID never answered here        | 404    | prediction_unknown  |
| a prediction older than the window      | 410    | prediction_expired  |
| feedback a second time                  | 409    | feedback_exists     |
| a label that is not a class             | 422    | unknown_label       |
| a body that is not {"label", "comment"} | 422    | invalid_request     |
| a body over 16 KiB                      | 413    | upload_too_large    |
| no key, keys configured                 | 401    | api_key_missing     |
| another client's prediction             | 404    | prediction_unknown  |
| feedback off (no GATEWAY_FEEDBACK_DIR)  | 404    | feedback_disabled   |
"""

import hashlib
import io
import json
import time

import httpx
import numpy as np
import pytest
from brainscan_testsupport.dicoms import PATIENT_ID, PATIENT_NAME, mr_dataset, mr_slice, to_bytes
from brainscan_testsupport.onnx_models import CLASSES
from gateway_images import png_bytes
from PIL import Image


def predict(client: httpx.Client, data: bytes, name: str = "scan.png") -> dict:
    response = client.post("/api/v1/predictions", files={"file": (name, data)})
    assert response.status_code == 200, response.text
    return response.json()


def feedback(client: httpx.Client, request_id: str, label: str, comment: str | None = None):
    body = {"label": label} if comment is None else {"label": label, "comment": comment}
    return client.post(f"/api/v1/predictions/{request_id}/feedback", json=body)


def other_label(label: str) -> str:
    return next(name for name in CLASSES if name != label)


def assert_error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["request_id"] == response.headers["x-request-id"]
    return error["message"]


@pytest.fixture
def store(tmp_path):
    return tmp_path / "feedback"


@pytest.fixture
def gateway(inference, start_gateway, store):
    return start_gateway(inference.url, feedback_dir=store)


@pytest.fixture
def client(gateway):
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        yield http


def records(store) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(store.glob("*.json"))]


def test_a_correction_is_stored_as_pixels_and_a_record(client, store):
    answer = predict(client, png_bytes(96))
    corrected = other_label(answer["label"])
    response = feedback(client, answer["request_id"], corrected, "  looks like a cyst  ")
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt == {
        "request_id": answer["request_id"],
        "label": corrected,
        "model_label": answer["label"],
        "confirmation": False,
        "image_sha256": receipt["image_sha256"],
        "model": {"name": "tiny-brainscan", "version": "1", "role": "production"},
    }
    png = (store / f"{receipt['image_sha256']}.png").read_bytes()
    assert hashlib.sha256(png).hexdigest() == receipt["image_sha256"]
    stored = np.asarray(Image.open(io.BytesIO(png)))
    assert np.array_equal(stored, np.asarray(Image.open(io.BytesIO(png_bytes(96)))))
    [record] = records(store)
    assert record["request_id"] == answer["request_id"]
    assert record["model"]["label"] == answer["label"]
    assert record["model"]["confidence"] == pytest.approx(answer["confidence"], abs=1e-6)
    assert record["model"]["version"] == "1" and record["model"]["classes"] == CLASSES
    assert record["label"] == corrected and record["confirmation"] is False
    assert record["comment"] == "looks like a cyst"  # trimmed
    assert record["received_at"].endswith("Z") and record["accepted"] is None

    metrics = client.get("/metrics").text
    assert (
        f'gateway_feedback_total{{label="{corrected}",model_label="{answer["label"]}",'
        f'model_version="1",outcome="correction"}} 1.0'
    ) in metrics
    assert "gateway_feedback_pending 0.0" in metrics  # its pixels went with the feedback


def test_a_confirmation_is_counted_as_one(client, store):
    answer = predict(client, png_bytes(80))
    receipt = feedback(client, answer["request_id"], answer["label"]).json()
    assert receipt["confirmation"] is True
    assert records(store)[0]["confirmation"] is True
    assert 'outcome="confirmation"} 1.0' in client.get("/metrics").text


def test_the_page_learns_feedback_is_on(client):
    info = client.get("/api/v1/model").json()["feedback"]
    assert info == {"enabled": True, "window_seconds": 900.0}


def test_held_images_are_counted(client):
    predict(client, png_bytes(64))
    metrics = client.get("/metrics").text
    assert "gateway_feedback_pending 1.0" in metrics
    assert "gateway_feedback_pending_bytes 4096.0" in metrics  # 64 x 64 grey


def test_feedback_twice_is_a_conflict_and_the_first_stands(client, store):
    answer = predict(client, png_bytes(96))
    assert feedback(client, answer["request_id"], answer["label"]).status_code == 201
    again = feedback(client, answer["request_id"], other_label(answer["label"]))
    assert "already given" in assert_error(again, 409, "feedback_exists")
    assert records(store)[0]["confirmation"] is True


def test_an_unknown_request_id_is_404(client):
    message = assert_error(feedback(client, "never-answered", "glioma"), 404, "prediction_unknown")
    assert "no prediction with this request ID" in message


def test_an_unknown_label_is_422_listing_the_classes_and_feedback_stays_possible(client):
    answer = predict(client, png_bytes(96))
    message = assert_error(feedback(client, answer["request_id"], "tumour"), 422, "unknown_label")
    assert "'tumour' is not a class" in message and ", ".join(CLASSES) in message
    assert feedback(client, answer["request_id"], "glioma").status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"label": ""},
        {"label": "glioma", "patient": "x"},
        {"label": "glioma", "comment": "x" * 2001},
    ],
    ids=["no label", "empty label", "unknown field", "comment too long"],
)
def test_a_malformed_body_is_422(client, body):
    answer = predict(client, png_bytes(96))
    response = client.post(f"/api/v1/predictions/{answer['request_id']}/feedback", json=body)
    message = assert_error(response, 422, "invalid_request")
    assert message.startswith("invalid request: body parameter")
    assert "xxxx" not in message  # what was sent is never quoted back


def test_a_body_over_16_kib_is_413(client):
    answer = predict(client, png_bytes(96))
    body = json.dumps({"label": "glioma", "comment": "x" * 20_000})
    response = client.post(
        f"/api/v1/predictions/{answer['request_id']}/feedback",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert_error(response, 413, "upload_too_large")


def test_after_the_window_it_is_too_old(inference, start_gateway, store):
    gateway = start_gateway(inference.url, feedback_dir=store, feedback_window_seconds=0.3)
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        answer = predict(client, png_bytes(96))
        time.sleep(0.5)
        response = feedback(client, answer["request_id"], "glioma")
    assert "too old for feedback" in assert_error(response, 410, "prediction_expired")
    assert not list(store.iterdir())  # nothing was ever written for it


def test_keys_guard_feedback_and_bind_it_to_the_client_that_asked(inference, start_gateway, store):
    gateway = start_gateway(inference.url, feedback_dir=store, api_keys=["alice", "bob"])
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        answer = predict(client.__class__(base_url=gateway.url, headers={"X-API-Key": "alice"}),
                         png_bytes(96))  # fmt: skip
        assert_error(feedback(client, answer["request_id"], "glioma"), 401, "api_key_missing")
        client.headers["X-API-Key"] = "bob"
        assert_error(feedback(client, answer["request_id"], "glioma"), 404, "prediction_unknown")
        client.headers["X-API-Key"] = "alice"
        assert feedback(client, answer["request_id"], "glioma").status_code == 201


def test_feedback_is_off_without_a_folder(inference, start_gateway):
    gateway = start_gateway(inference.url)
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        answer = predict(client, png_bytes(96))
        message = assert_error(feedback(client, answer["request_id"], "glioma"), 404,
                               "feedback_disabled")  # fmt: skip
        assert "GATEWAY_FEEDBACK_DIR" in message
        assert client.get("/api/v1/model").json()["feedback"] == {
            "enabled": False, "window_seconds": None,
        }  # fmt: skip
        assert "gateway_feedback_pending 0.0" in client.get("/metrics").text


def test_a_dicom_leaves_no_patient_data_in_the_store(client, store):
    answer = predict(client, to_bytes(mr_dataset(mr_slice(96))), "a.dcm")
    assert feedback(client, answer["request_id"], "notumor").status_code == 201
    for path in store.iterdir():
        content = path.read_bytes()
        assert PATIENT_NAME.encode() not in content and PATIENT_ID.encode() not in content
        assert b"DICM" not in content
    [png] = store.glob("*.png")
    assert Image.open(png).size == (96, 96)


def test_records_survive_a_restart_and_the_held_images_do_not(inference, start_gateway, store):
    first = start_gateway(inference.url, feedback_dir=store)
    with httpx.Client(base_url=first.url, timeout=30) as client:
        given = predict(client, png_bytes(96))
        assert feedback(client, given["request_id"], "glioma").status_code == 201
        pending = predict(client, png_bytes(80))
    first.stop()
    second = start_gateway(inference.url, feedback_dir=store)
    with httpx.Client(base_url=second.url, timeout=30) as client:
        assert [r["request_id"] for r in records(store)] == [given["request_id"]]
        # What was held in memory is gone with the process, as it should be.
        assert_error(feedback(client, pending["request_id"], "glioma"), 404, "prediction_unknown")


def test_one_log_event_per_feedback_without_the_comment(inference, start_gateway, store, capsys):
    gateway = start_gateway(inference.url, feedback_dir=store, log_level="INFO")
    capsys.readouterr()
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        answer = predict(client, png_bytes(96))
        comment = "Doe^Janet, seen 2026-01-02"
        receipt = feedback(client, answer["request_id"], "glioma", comment).json()
    events: list[dict] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = capsys.readouterr().out.splitlines()
        events += [json.loads(line) for line in lines if line.startswith("{")]
        if any(e.get("message") == "feedback" for e in events):
            break
        time.sleep(0.02)
    [event] = [e for e in events if e.get("message") == "feedback"]
    assert event["event"]["action"] == "feedback" and event["event"]["outcome"] == "success"
    assert event["feedback"]["label"] == "glioma"
    assert event["feedback"]["outcome"] == (
        "confirmation" if answer["label"] == "glioma" else "correction"
    )
    assert event["feedback"]["has_comment"] is True
    assert event["feedback"]["image_sha256"] == receipt["image_sha256"]
    assert event["prediction"]["label"] == answer["label"]
    assert event["model"] == {"name": "tiny-brainscan", "version": "1"}
    assert all("Doe^Janet" not in json.dumps(e) for e in events)
