"""The access event: the fields structlog's ECS chain would write, batched per event-loop step."""

from __future__ import annotations

import asyncio
import io
import json
import sys

import pytest
import structlog
from brainscan_servicekit import AccessLog, configure_logging
from servicekit_events import log_events

pytestmark = pytest.mark.anyio


class CountingStream(io.StringIO):
    """stdout that remembers how many writes it got."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def without_timestamp(event: dict) -> dict:
    copy = json.loads(json.dumps(event))
    copy.pop("@timestamp")
    return copy


async def test_the_event_is_what_the_structlog_chain_writes(capsys) -> None:
    configure_logging("brainscan-testsvc", "1.2.3", "INFO")
    structlog.contextvars.bind_contextvars(**{"http.request.id": "abc-1"})
    try:
        structlog.get_logger("access").info(
            "request",
            **{
                "http.request.method": "POST",
                "url.path": "/hello",
                "http.response.status_code": 201,
                "event.duration": 1234,
            },
        )
    finally:
        structlog.contextvars.unbind_contextvars("http.request.id")
    AccessLog("brainscan-testsvc", "1.2.3").request("POST", "/hello", 201, 1234, "abc-1")
    await asyncio.sleep(0)  # written when the event-loop step ends
    structlog_event, ours = log_events(capsys.readouterr().out)
    assert without_timestamp(ours) == without_timestamp(structlog_event)
    assert ours["@timestamp"].endswith("Z") and len(ours["@timestamp"]) == 24
    assert ours["event"] == {"dataset": "brainscan.testsvc", "duration": 1234}


async def test_the_events_of_one_step_are_written_in_one_write(monkeypatch) -> None:
    stream = CountingStream()
    monkeypatch.setattr(sys, "stdout", stream)
    access_log = AccessLog("brainscan-testsvc", "1")
    for i in range(3):
        access_log.request("GET", f"/{i}", 200, 1, f"id-{i}")
    assert stream.writes == 0
    await asyncio.sleep(0)
    assert stream.writes == 1
    assert [e["url"]["path"] for e in log_events(stream.getvalue())] == ["/0", "/1", "/2"]
    access_log.request("GET", "/3", 200, 1, "id-3")
    access_log.flush()  # as at shutdown: nothing waits for the step's end
    await asyncio.sleep(0)
    assert stream.writes == 2 and len(log_events(stream.getvalue())) == 4


def test_outside_an_event_loop_the_event_is_written_at_once(capsys) -> None:
    AccessLog("brainscan-testsvc", "1").request("GET", "/", 204, 1, "id-1")
    (event,) = log_events(capsys.readouterr().out)
    assert event["http"]["response"]["status_code"] == 204


def test_the_level_decides_whether_events_are_written() -> None:
    assert AccessLog("s", "1", "DEBUG").enabled and AccessLog("s", "1", "info").enabled
    assert not AccessLog("s", "1", "WARNING").enabled
    with pytest.raises(ValueError, match="unknown log level"):
        AccessLog("s", "1", "LOUD")
