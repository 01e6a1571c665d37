"""multipart/related parsing and writing, and the STOW-RS answer, on their own."""

from __future__ import annotations

import pytest
from brainscan_gateway.dicomweb import multipart, stow
from brainscan_gateway.dicomweb.receiver import InstanceOutcome, Status
from brainscan_gateway.errors import GatewayError


def test_encode_and_split_round_trip():
    body, content_type = multipart.encode([b"first", b"second\r\n--not-a-boundary"])
    boundary = multipart.boundary_of(content_type)
    parts = multipart.split(body, boundary, 10)
    assert [p.content for p in parts] == [b"first", b"second\r\n--not-a-boundary"]
    assert {p.content_type for p in parts} == {multipart.DICOM}


def test_preamble_padding_epilogue_and_parts_without_headers():
    body = (
        b"a preamble\r\n--b  \r\nContent-Type: application/dicom; transfer-syntax=1.2\r\n"
        b"Content-Length: 3\r\n\r\nabc\r\n--b\r\n\r\nxyz\r\n--b--\r\nan epilogue"
    )
    parts = multipart.split(body, "b", 10)
    assert [(p.content_type, p.content) for p in parts] == [
        (multipart.DICOM, b"abc"),
        ("", b"xyz"),
    ]


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (None, 415),
        ("application/dicom", 415),
        ("multipart/form-data; boundary=x", 415),
        ('multipart/related; type="application/dicom+json"; boundary=x', 415),
        ('multipart/related; type="application/dicom"', 400),
        ("multipart/related; boundary=" + "x" * 201, 400),
    ],
)
def test_content_types_refused(content_type, status):
    with pytest.raises(GatewayError) as refused:
        multipart.boundary_of(content_type)
    assert refused.value.status == status


def test_the_boundary_orthanc_sends_is_taken():
    orthanc = "c9cc4ea6-600b-4ed7-bac3-680b93ed2412-c9cc4ea6-600b-4ed7-bac3-680b93ed2412"
    content_type = f'multipart/related; type="application/dicom"; boundary={orthanc}'
    assert multipart.boundary_of(content_type) == orthanc
    assert multipart.boundary_of("Multipart/Related; boundary=x") == "x"  # type is optional


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "no multipart/related boundary delimiter"),
        (b"--b--\r\n", "has no parts"),
        (b"--b\r\nContent-Type: application/dicom\r\n\r\nabc", "without its close delimiter"),
        (b"--bx\r\n\r\nabc\r\n--b--", "not followed by a line break"),
        (b"--b\r\nContent-Type application/dicom\r\n\r\nabc\r\n--b--", "'Name: value'"),
        (b"--b\r\nContent-Type: application/dicom\r\nabc\r\n--b--", "do not end with an empty"),
    ],
)
def test_malformed_bodies_are_400_saying_what(body, words):
    with pytest.raises(GatewayError) as refused:
        multipart.split(body, "b", 10)
    assert refused.value.status == 400
    assert refused.value.code == "malformed_multipart"
    assert words in refused.value.message


def test_too_many_parts_is_413_before_the_rest_is_read():
    body, content_type = multipart.encode([b"a", b"b", b"c"])
    with pytest.raises(GatewayError) as refused:
        multipart.split(body[:-30], multipart.boundary_of(content_type), 2)  # truncated, too
    assert (refused.value.status, refused.value.code) == (413, "too_many_instances")
    assert "more than 2 instances" in refused.value.message


def outcome(status: Status, failure: int | None = None) -> InstanceOutcome:
    return InstanceOutcome(1, "1.2.3", "1.2.3.4", status, "why", failure, None)


@pytest.mark.parametrize(
    ("statuses", "http_status"),
    [
        ([Status.CLASSIFIED, Status.SKIPPED], 200),
        ([Status.SKIPPED], 200),
        ([Status.CLASSIFIED, Status.FAILED], 202),
        ([Status.FAILED, Status.FAILED], 409),
    ],
)
def test_stow_answer_status(statuses, http_status):
    status, body = stow.answer(
        [outcome(s, 0xC000 if s is Status.FAILED else None) for s in statuses]
    )
    assert status == http_status
    failed = body.get(stow.FAILED_SOP_SEQUENCE, {}).get("Value", [])
    assert len(failed) == statuses.count(Status.FAILED)
    for item in failed:
        assert item[stow.FAILURE_REASON] == {"vr": "US", "Value": [0xC000]}
        assert item[stow.PRIVATE_CREATOR] == {"vr": "LO", "Value": ["BRAINSCAN"]}
        assert item[stow.REASON] == {"vr": "LT", "Value": ["why"]}
