"""Splitting a body into its JSON header and binary tail, and joining one."""

import numpy as np
import orjson
import pytest
from brainscan_v2protocol import (
    BINARY_CONTENT_TYPE,
    HEADER_LENGTH,
    JSON_CONTENT_TYPE,
    FramingError,
    join_body,
    little_endian_bytes,
    split_body,
)


def test_without_the_header_field_all_of_the_body_is_json():
    header, binary = split_body(b'{"a": 1}', None)
    assert bytes(header) == b'{"a": 1}' and len(binary) == 0


def test_the_header_field_says_where_the_json_ends():
    header, binary = split_body(b'{"a":1}\x01\x02', "7")
    assert bytes(header) == b'{"a":1}' and bytes(binary) == b"\x01\x02"


@pytest.mark.parametrize(
    ("value", "says"),
    [("x", "must be an integer"), ("0", "outside the body"), ("99", "outside the body")],
)
def test_a_header_length_that_does_not_fit_is_refused_naming_the_field(value, says):
    with pytest.raises(FramingError, match=says) as raised:
        split_body(b"{}", value)
    assert "Inference-Header-Content-Length" in str(raised.value)
    assert raised.value.code == "malformed_header"


def test_join_writes_plain_json_without_tensors_and_the_length_field_with_them():
    body, headers = join_body({"outputs": []}, [])
    assert headers == {"content-type": JSON_CONTENT_TYPE} and orjson.loads(body) == {"outputs": []}
    body, headers = join_body({"outputs": [np.float32(0.5)]}, [b"\x00\x01"])
    assert headers["content-type"] == BINARY_CONTENT_TYPE
    size = int(headers[HEADER_LENGTH])
    assert orjson.loads(body[:size]) == {"outputs": [0.5]} and body[size:] == b"\x00\x01"


def test_tensors_travel_in_c_order_little_endian():
    tensor = np.arange(6, dtype=">u2").reshape(2, 3).T  # big-endian and not C-contiguous
    raw = little_endian_bytes(tensor)
    np.testing.assert_array_equal(np.frombuffer(raw, "<u2").reshape(3, 2), tensor)
