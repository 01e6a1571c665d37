"""One write per response: the transport wrapper joins the writes of one event-loop step."""

from __future__ import annotations

import asyncio
import socket

import pytest
from brainscan_inference.http_protocol import _CoalescingTransport

pytestmark = pytest.mark.anyio


class RecordingTransport:
    """Stands in for the socket transport and records what reaches it (the syscalls)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def abort(self) -> None:
        self.events.append("abort")
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str):
        return f"extra:{name}"


async def test_writes_in_one_step_leave_as_one_at_its_end() -> None:
    real = RecordingTransport()
    transport = _CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"body")
    assert real.writes == [] and transport.get_write_buffer_size() == 23
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert real.writes[-1] == b"next"


async def test_close_sends_what_was_written_first_and_abort_drops_it() -> None:
    real = RecordingTransport()
    transport = _CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"last words")
    transport.close()
    assert real.writes == [b"last words"] and real.events == ["close"]
    await asyncio.sleep(0)
    assert real.writes == [b"last words"]  # nothing written twice

    other = RecordingTransport()
    transport = _CoalescingTransport(other, asyncio.get_running_loop())
    transport.write(b"never sent")
    transport.abort()
    await asyncio.sleep(0)
    assert other.writes == [] and other.events == ["abort"]


async def test_everything_else_is_the_real_transports() -> None:
    transport = _CoalescingTransport(RecordingTransport(), asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == "extra:peername"


def test_a_real_server_answers_keep_alive_pipelined_and_closing_requests(shared_server) -> None:
    request = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=10) as raw:
        raw.sendall(request + request)  # pipelined: both answered, in order
        received = b""
        while received.count(b'{"live":true}') < 2:
            received += raw.recv(65536)
        raw.sendall(request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        rest = b""
        while chunk := raw.recv(65536):  # the server closes after this answer
            rest += chunk
    assert received.count(b"HTTP/1.1 200 OK") == 2
    assert rest.startswith(b"HTTP/1.1 200 OK") and rest.endswith(b'{"live":true}')
