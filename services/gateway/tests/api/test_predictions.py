"""POST /api/v1/predictions over real HTTP, with the real inference service behind."""

import base64
import io
import json
import time

import httpx
import numpy as np
from brainscan_testsupport.dicoms import PATIENT_ID, PATIENT_NAME, mr_dataset, mr_slice, to_bytes
from brainscan_testsupport.onnx_models import CLASSES
from gateway_dicoms import encoded, multi_frame, numbered_frames, with_syntax
from gateway_images import encode, jpeg_bytes, png_bomb, png_bytes
from PIL import Image
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)


def upload(http, data: bytes, name: str = "scan.png", **params):
    return http.post("/api/v1/predictions", files={"file": (name, data)}, params=params)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


def test_png_prediction_has_every_field(http):
    response = upload(http, png_bytes(96))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] in CLASSES
    assert list(body["probabilities"]) == CLASSES
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-4
    assert body["confidence"] == max(body["probabilities"].values())
    assert body["uncertain"] == (body["confidence"] < body["threshold"])
    assert body["threshold"] == 0.5
    assert body["model"] == {"name": "tiny-brainscan", "version": "1", "role": "production"}
    assert body["image"] == {"format": "png", "width": 96, "height": 96}
    assert body["request_id"] == response.headers["x-request-id"]
    assert set(body["timings"]) == {"decode_ms", "inference_ms", "explain_ms", "total_ms"}
    assert body["activation_map"] is None and body["preview_png"] is None
    assert response.headers["cache-control"] == "no-store"


def test_same_picture_gets_the_same_answer_in_any_format(http):
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(png_bytes(96))))] * 3, axis=-1)
    as_png = upload(http, encode(Image.fromarray(pixels), "PNG")).json()
    as_grey = upload(http, png_bytes(96)).json()
    assert as_png["probabilities"] == as_grey["probabilities"]


def test_jpeg_and_dicom_are_classified(http):
    jpeg = upload(http, jpeg_bytes(128), "a.jpg").json()
    assert jpeg["image"]["format"] == "jpeg"
    response = upload(http, to_bytes(mr_dataset(mr_slice(96))), "a.dcm", preview="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"] == {"format": "dicom", "width": 96, "height": 96}
    preview = Image.open(io.BytesIO(base64.b64decode(body["preview_png"])))
    assert preview.size == (96, 96)
    # Nothing from the DICOM header comes back.
    assert PATIENT_NAME not in response.text and PATIENT_ID not in response.text


def test_explain_returns_an_overlay_png(http):
    response = upload(http, png_bytes(200), explain="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["activation_map"]["label"] == body["label"]
    overlay = Image.open(io.BytesIO(base64.b64decode(body["activation_map"]["overlay_png"])))
    assert overlay.format == "PNG" and overlay.mode == "RGB" and overlay.size == (200, 200)


def test_request_id_is_taken_from_the_caller(http):
    response = http.post(
        "/api/v1/predictions",
        files={"file": ("a.png", png_bytes(64))},
        headers={"X-Request-ID": "case-42"},
    )
    assert response.headers["x-request-id"] == "case-42"
    assert response.json()["request_id"] == "case-42"


def access_events(text: str) -> list[dict]:
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [e for e in events if e.get("message") == "request"]


def test_each_request_is_logged_once_with_its_id_and_probes_are_not(
    inference, start_gateway, capsys
):
    gateway = start_gateway(inference.url, log_level="INFO")
    capsys.readouterr()
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        answer = upload(client, png_bytes(64))
        predicted = client.post(
            "/api/v1/predictions",
            files={"file": ("a.png", png_bytes(64))},
            headers={"X-Request-ID": "case-7"},
        )
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert client.get(probe).status_code == 200
        # Last, so that an event for a probe would have been written before its event.
        missing = client.get("/api/v1/nothing-here", headers={"X-Request-ID": "case-8"})
    assert predicted.status_code == 200 and predicted.headers["x-request-id"] == "case-7"
    assert missing.status_code == 404 and missing.headers["x-request-id"] == "case-8"
    events: list[dict] = []
    deadline = time.monotonic() + 10  # written by the server's thread at the end of its step
    while len(events) < 3 and time.monotonic() < deadline:
        events += access_events(capsys.readouterr().out)
        time.sleep(0.02)
    by_id = {e["http"]["request"]["id"]: e for e in events}
    assert len(events) == 3 == len(by_id)  # one each, and none for the probes or /metrics
    assert set(by_id) == {answer.headers["x-request-id"], "case-7", "case-8"}
    assert by_id["case-7"]["url"]["path"] == "/api/v1/predictions"
    assert by_id["case-7"]["http"]["request"]["method"] == "POST"
    assert by_id["case-7"]["http"]["response"]["status_code"] == 200
    assert by_id["case-7"]["service"]["name"] == "brainscan-gateway"
    assert by_id["case-8"]["http"]["response"]["status_code"] == 404


# --- bad input: each gets a clear 4xx in the one error shape --------------------------------


def test_empty_file(http):
    assert_error(upload(http, b""), 422, "empty_file")


def test_no_file_field(http):
    response = http.post("/api/v1/predictions", files={"image": ("a.png", png_bytes(64))})
    assert "'file'" in assert_error(response, 422, "missing_file")["message"]


def test_file_field_sent_as_text(http):
    response = http.post("/api/v1/predictions", data={"file": "not a file"})
    assert_error(response, 422, "missing_file")


def test_no_multipart_body_at_all(http):
    response = http.post("/api/v1/predictions", json={"file": "x"})
    assert_error(response, 422, "missing_file")


def test_text_named_jpg_is_detected_by_content(http):
    response = http.post(
        "/api/v1/predictions",
        files={"file": ("scan.jpg", b"patient notes, not a picture\n", "image/jpeg")},
    )
    assert "a text file" in assert_error(response, 415, "unsupported_format")["message"]


def test_pdf_named_jpg_is_detected_by_content(http):
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    response = http.post("/api/v1/predictions", files={"file": ("scan.jpg", pdf, "image/jpeg")})
    assert "a PDF document" in assert_error(response, 415, "unsupported_format")["message"]


def test_unsupported_format(http):
    gif = encode(Image.new("L", (64, 64)), "GIF")
    assert "a GIF image" in assert_error(upload(http, gif), 415, "unsupported_format")["message"]


def test_truncated_jpeg_and_png(http):
    assert_error(upload(http, jpeg_bytes(96)[:500]), 422, "corrupt_image")
    assert_error(upload(http, png_bytes(96)[:200]), 422, "corrupt_image")


def test_decompression_bomb(http):
    assert_error(upload(http, png_bomb(12_000)), 422, "too_many_pixels")


def test_too_small(http):
    small = encode(Image.new("L", (20, 20), 80), "PNG")
    assert_error(upload(http, small), 422, "image_too_small")


def test_dicom_without_pixels(http):
    error = assert_error(upload(http, to_bytes(mr_dataset(None))), 422, "dicom_no_pixel_data")
    assert PATIENT_NAME not in error["message"]


def test_bad_query_parameter_is_422_in_our_shape(http):
    response = upload(http, png_bytes(64), explain="perhaps")
    assert "explain" in assert_error(response, 422, "invalid_request")["message"]


def test_two_files_are_refused(http):
    response = http.post(
        "/api/v1/predictions",
        files=[("file", ("a.png", png_bytes(64))), ("file", ("b.png", png_bytes(64)))],
    )
    assert_error(response, 400, "invalid_request")


# --- compressed and multi-frame DICOM --------------------------------------------------------


def test_compressed_dicom_gets_the_same_answer_as_uncompressed(http):
    plain = upload(http, encoded(ExplicitVRLittleEndian), "a.dcm")
    assert plain.status_code == 200, plain.text
    for syntax in (JPEGLosslessSV1, JPEGLSLossless, JPEG2000Lossless, RLELossless):
        response = upload(http, encoded(syntax), "a.dcm")
        assert response.status_code == 200, (syntax.name, response.text)
        assert response.json()["probabilities"] == plain.json()["probabilities"], syntax.name
        assert response.json()["frame"] is None
        assert PATIENT_NAME not in response.text and PATIENT_ID not in response.text


def test_undecodable_transfer_syntax_is_415_naming_it(http):
    response = upload(http, with_syntax("1.2.840.10008.1.2.4.102"), "video.dcm")
    message = assert_error(response, 415, "dicom_unsupported")["message"]
    assert "MPEG-4 AVC/H.264 High Profile / Level 4.1 (1.2.840.10008.1.2.4.102)" in message
    assert "Explicit VR Little Endian" in message


def test_multi_frame_dicom_is_classified_on_the_middle_frame_or_the_one_asked_for(http):
    frames = numbered_frames(3, size=64)
    data = to_bytes(multi_frame(frames))
    middle = upload(http, data, "series.dcm")
    assert middle.status_code == 200, middle.text
    assert middle.json()["frame"] == {"index": 2, "count": 3}
    # Frame 2 alone, as a single-frame file, gets the very same answer.
    alone = upload(http, to_bytes(mr_dataset(frames[1])), "slice.dcm").json()
    assert alone["frame"] is None
    assert middle.json()["probabilities"] == alone["probabilities"]

    third = upload(http, data, "series.dcm", frame=3)
    assert third.status_code == 200 and third.json()["frame"] == {"index": 3, "count": 3}
    by_form = http.post(
        "/api/v1/predictions", files={"file": ("series.dcm", data)}, data={"frame": "1"}
    )
    assert by_form.status_code == 200, by_form.text
    assert by_form.json()["frame"] == {"index": 1, "count": 3}


def test_frame_out_of_range_or_invalid_is_422(http):
    data = to_bytes(multi_frame(numbered_frames(3, size=64)))
    message = assert_error(upload(http, data, frame=4), 422, "frame_out_of_range")["message"]
    assert "3 frames (numbered 1 to 3)" in message
    assert "frame" in assert_error(upload(http, data, frame=0), 422, "invalid_request")["message"]
    form = http.post("/api/v1/predictions", files={"file": ("a.dcm", data)}, data={"frame": "x"})
    assert "'frame'" in assert_error(form, 422, "invalid_request")["message"]
    both = http.post(
        "/api/v1/predictions",
        files={"file": ("a.dcm", data)},
        data={"frame": "1"},
        params={"frame": 2},
    )
    assert "send it once" in assert_error(both, 422, "invalid_request")["message"]
    png = assert_error(upload(http, png_bytes(64), frame=2), 422, "frame_out_of_range")
    assert "one frame" in png["message"]
    assert upload(http, png_bytes(64), frame=1).json()["frame"] is None
