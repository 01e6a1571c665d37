"""POST /dicomweb/studies over real HTTP: real inference, a real gateway, a STOW-RS push server.

The SRs the gateway pushes are read back with pydicom and highdicom and compared with the JSON
answer the upload route gives for the same instance: both come from dicom_sr.predict_sr.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import highdicom as hd
import httpx
import pytest
import structlog
from brainscan_gateway.dicomweb import receiver as stow_receiver
from brainscan_gateway.dicomweb import stow
from brainscan_gateway.results import dicom_sr
from brainscan_testsupport.dicoms import PATIENT_BIRTH_DATE, PATIENT_ID, PATIENT_NAME, to_bytes
from gateway_dicomweb import PushServer, instance, items, stow_body, value
from gateway_images import png_bytes
from gateway_servers import MODEL_NAME, bound_socket
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

KEY = "stow-key"


@pytest.fixture
def push() -> Iterator[PushServer]:
    server = PushServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def receiver(inference, start_gateway, push):
    """A gateway whose receiver classifies FLAIR series only and pushes to ``push``."""
    gateway = start_gateway(
        inference.url,
        dicomweb_push_url=push.url,
        dicomweb_series_pattern="(?i)flair",
        dicomweb_push_username="brainscan",
        dicomweb_push_password="s3cret",
        dicomweb_max_instances=4,
        api_keys=[KEY],
        log_level="INFO",
    )
    with httpx.Client(base_url=gateway.url, timeout=60, headers={"X-API-Key": KEY}) as http:
        yield http


def post(http: httpx.Client, *datasets, path: str = "/dicomweb/studies") -> httpx.Response:
    body, headers = stow_body(*datasets)
    return http.post(path, content=body, headers=headers)


def by_instance(answer: dict) -> dict[str, dict]:
    found = {}
    for sequence in (stow.REFERENCED_SOP_SEQUENCE, stow.FAILED_SOP_SEQUENCE):
        for item in items(answer, sequence):
            found[value(item, stow.REFERENCED_SOP_INSTANCE_UID)] = item
    return found


def test_mr_instances_are_classified_others_skipped_and_the_srs_pushed(receiver, push):
    study, series = generate_uid(), generate_uid()
    flair = [instance(study, series), instance(study, series)]
    localizer = instance(study, series_description="LOCALIZER")
    no_description = instance(study, series_description=None)
    ct = instance(study, modality="CT")
    response = post(receiver, *flair, localizer, ct)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    answer = response.json()
    assert stow.FAILED_SOP_SEQUENCE not in answer
    found = by_instance(answer)
    assert len(found) == 4
    for ds in flair:
        item = found[ds.SOPInstanceUID]
        assert value(item, stow.STATUS) == "CLASSIFIED"
        assert value(item, stow.REFERENCED_SOP_CLASS_UID) == ds.SOPClassUID
        assert "stored at the push server" in value(item, stow.REASON)
    assert value(found[localizer.SOPInstanceUID], stow.STATUS) == "SKIPPED"
    assert "SeriesDescription does not match" in value(found[localizer.SOPInstanceUID], stow.REASON)
    assert value(found[ct.SOPInstanceUID], stow.STATUS) == "SKIPPED"
    assert "its Modality is CT" in value(found[ct.SOPInstanceUID], stow.REASON)
    # An absent description is empty, which "(?i)flair" does not match.
    skipped = by_instance(post(receiver, no_description).json())
    assert value(skipped[no_description.SOPInstanceUID], stow.STATUS) == "SKIPPED"

    # One STOW-RS request to the push server with both SRs, with its credentials.
    assert len(push.requests) == 1
    assert push.requests[0]["authorization"] == httpx.BasicAuth("brainscan", "s3cret")._auth_header
    assert len(push.received) == 2
    pushed = {sr.SOPInstanceUID: sr for sr in push.received}
    for ds in flair:
        sr_uid = value(found[ds.SOPInstanceUID], stow.SR_INSTANCE_UID)
        sr = pushed[sr_uid]
        assert sr.Modality == "SR" and sr.StudyInstanceUID == study
        assert sr.VerificationFlag == "UNVERIFIED"
        report = hd.sr.srread(io.BytesIO(to_bytes(sr)))
        [group] = report.content.get_image_measurement_groups()
        [source] = group.source_images
        assert source.referenced_sop_instance_uid == ds.SOPInstanceUID
        # What the upload route answers for the same file, in JSON.
        json_answer = receiver.post(
            "/api/v1/predictions", files={"file": ("a.dcm", to_bytes(ds))}
        ).json()
        assert group.finding_type.value == dicom_sr.FINDING_CODES[json_answer["label"]].value
        [probability] = group.get_measurements(name=codes.DCM.Probability)
        assert probability.value == pytest.approx(json_answer["confidence"])
        observer = report.content.get_observer_contexts(observer_type=codes.DCM.Device)[0]
        attributes = observer.observer_identifying_attributes
        assert (attributes.name, attributes.serial_number) == (MODEL_NAME, "1")
        assert f"classified as {json_answer['label']}" in value(
            found[ds.SOPInstanceUID], stow.REASON
        )


def test_an_instance_of_another_study_fails_on_the_study_route(receiver, push):
    study = generate_uid()
    mine, other = instance(study), instance()
    response = post(receiver, mine, other, path=f"/dicomweb/studies/{study}")
    assert response.status_code == 202, response.text
    answer = response.json()
    [failed] = items(answer, stow.FAILED_SOP_SEQUENCE)
    assert value(failed, stow.REFERENCED_SOP_INSTANCE_UID) == other.SOPInstanceUID
    assert value(failed, stow.FAILURE_REASON) == stow_receiver.OTHER_STUDY
    assert "another study" in value(failed, stow.REASON)
    [stored] = items(answer, stow.REFERENCED_SOP_SEQUENCE)
    assert value(stored, stow.STATUS) == "CLASSIFIED"
    assert len(push.received) == 1
    bad = receiver.post("/dicomweb/studies/not-a-uid", content=b"", headers=stow_body()[1])
    assert bad.status_code == 422


def test_damaged_and_unclassifiable_instances_fail_each_with_its_reason(receiver, push):
    good = instance()
    damaged = to_bytes(instance())[:300]  # DICM marker, header cut short
    cut_pixels = to_bytes(instance())[:-1000]
    no_pixels = instance()
    del no_pixels.PixelData
    response = post(receiver, good, damaged, cut_pixels, no_pixels)
    assert response.status_code == 202, response.text
    failed = items(response.json(), stow.FAILED_SOP_SEQUENCE)
    reasons = {value(item, stow.PART): value(item, stow.REASON) for item in failed}
    assert set(reasons) == {2, 3, 4}
    assert "part 2 has no SOPClassUID or SOPInstanceUID" in reasons[2]
    assert "corrupt_image" in reasons[3]
    assert "dicom_no_pixel_data" in reasons[4]
    assert {value(item, stow.FAILURE_REASON) for item in failed} == {0xC000}
    assert len(push.received) == 1


@pytest.mark.parametrize("answer_status", [503, 400])
def test_srs_the_push_server_refuses_fail_the_instances(receiver, push, answer_status):
    push.answer_status = answer_status
    response = post(receiver, instance(), instance(modality="CT"))
    assert response.status_code == 202, response.text
    [failed] = items(response.json(), stow.FAILED_SOP_SEQUENCE)
    assert value(failed, stow.FAILURE_REASON) == stow_receiver.PROCESSING_FAILURE
    assert f"the push server answered HTTP {answer_status}" in value(failed, stow.REASON)
    assert value(failed, stow.SR_INSTANCE_UID) is None


def test_an_unreachable_push_server_fails_every_classified_instance(inference, start_gateway):
    closed = bound_socket()  # bound, never listening: connections are refused
    try:
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/dicom-web"
        gateway = start_gateway(inference.url, dicomweb_push_url=url)
        body, headers = stow_body(instance(), instance())
        response = httpx.post(f"{gateway.url}/dicomweb/studies", content=body, headers=headers)
    finally:
        closed.close()
    assert response.status_code == 409, response.text
    failed = items(response.json(), stow.FAILED_SOP_SEQUENCE)
    assert len(failed) == 2
    assert all("could not be reached" in value(item, stow.REASON) for item in failed)


@pytest.mark.parametrize(
    ("headers", "body", "status", "code", "words"),
    [
        ({"Content-Type": "application/dicom"}, b"x", 415, "unsupported_media_type", ""),
        (
            {"Content-Type": 'multipart/related; type="application/dicom+json"; boundary=b'},
            b"--b--",
            415,
            "unsupported_media_type",
            "only DICOM instances",
        ),
        (
            {"Content-Type": 'multipart/related; type="application/dicom"'},
            b"x",
            400,
            "malformed_multipart",
            "no boundary",
        ),
        (
            {"Content-Type": 'multipart/related; type="application/dicom"; boundary=b'},
            b"--b\r\nContent-Type: application/dicom\r\n\r\nDICM",
            400,
            "malformed_multipart",
            "truncated",
        ),
    ],
)
def test_requests_that_are_not_stow_rs_are_refused(receiver, headers, body, status, code, words):
    response = receiver.post("/dicomweb/studies", content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"]


def test_a_part_that_is_not_dicom_is_415_naming_it(receiver, push):
    body, headers = stow_body(instance(), png_bytes(96))
    response = receiver.post("/dicomweb/studies", content=body, headers=headers)
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_format"
    assert "part 2 is a PNG image, not a DICOM instance" in error["message"]
    typed = body.replace(b"Content-Type: application/dicom", b"Content-Type: image/png", 1)
    response = receiver.post("/dicomweb/studies", content=typed, headers=headers)
    assert response.status_code == 415
    assert "part 1 is image/png" in response.json()["error"]["message"]
    assert push.requests == []  # nothing classified, nothing pushed


def test_limits_on_instances_and_body_size(inference, start_gateway, push):
    gateway = start_gateway(
        inference.url,
        dicomweb_push_url=push.url,
        dicomweb_max_instances=2,
        dicomweb_max_body_bytes=64 * 1024,
    )
    small = [instance(size=32) for _ in range(3)]
    body, headers = stow_body(*small)
    response = httpx.post(f"{gateway.url}/dicomweb/studies", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_many_instances"
    body, headers = stow_body(instance(size=256))  # 12-bit 256x256: 128 KiB of pixels
    response = httpx.post(f"{gateway.url}/dicomweb/studies", content=body, headers=headers)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "upload_too_large" and "several requests" in error["message"]
    # Chunked (no Content-Length): refused as it streams in.
    response = httpx.post(
        f"{gateway.url}/dicomweb/studies",
        content=iter([body[:40000], body[40000:]]),
        headers=headers,
    )
    assert response.status_code == 413
    assert push.requests == []


def test_api_key_and_receiver_off_without_a_push_url(receiver, inference, start_gateway):
    body, headers = stow_body(instance())
    response = httpx.post(f"{receiver.base_url}/dicomweb/studies", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_missing"
    gateway = start_gateway(inference.url)  # no GATEWAY_DICOMWEB_PUSH_URL
    response = httpx.post(f"{gateway.url}/dicomweb/studies", content=body, headers=headers)
    assert response.status_code == 404


def test_no_patient_attribute_or_uid_in_logs_on_the_stow_path(receiver, push, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    ds = instance()
    with structlog.testing.capture_logs() as events:
        answered = post(receiver, ds, instance(modality="CT"), to_bytes(instance())[:-1000])
        refused = receiver.post(
            "/dicomweb/studies",
            content=stow_body(ds, png_bytes(64))[0],
            headers=stow_body()[1],
        )
    assert answered.status_code == 202 and refused.status_code == 400
    sr = push.received[0]
    assert str(sr.PatientName) == PATIENT_NAME  # the SR carries it, as it must
    [stow_event] = [e for e in events if e["event"] == "dicomweb stow"]
    assert (stow_event["dicomweb.classified"], stow_event["dicomweb.skipped"]) == (1, 1)
    assert (stow_event["dicomweb.failed"], stow_event["dicomweb.pushed"]) == (1, 1)
    captured = capfd.readouterr()
    for text in (repr(events), caplog.text, captured.out, captured.err):
        assert PATIENT_NAME not in text and PATIENT_ID not in text and "Doe" not in text
        assert PATIENT_BIRTH_DATE not in text and "ACC-4711" not in text
        assert "FLAIR" not in text  # the series description
        assert ds.StudyInstanceUID not in text and ds.SOPInstanceUID not in text
        assert sr.SOPInstanceUID not in text
