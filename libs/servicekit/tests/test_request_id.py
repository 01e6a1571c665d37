"""X-Request-ID in and out, bound for logs, one access event per request, through an ASGI app."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import structlog
from brainscan_servicekit import (
    AccessLog,
    RequestIdMiddleware,
    configure_logging,
    current_request_id,
)
from servicekit_events import log_events
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

pytestmark = pytest.mark.anyio


async def echo(_request):
    structlog.get_logger().info("handled", **{"model.version": "3"})
    return JSONResponse({"request_id": current_request_id()}, headers={"X-Request-ID": "inner"})


async def fail(_request):
    raise RuntimeError("a bug")


def wrapped(level: str = "INFO") -> RequestIdMiddleware:
    configure_logging("testsvc", "1.2.3", level)
    app = Starlette(routes=[Route("/echo", echo), Route("/healthz", echo), Route("/fail", fail)])
    return RequestIdMiddleware(
        app, access_log=AccessLog("testsvc", "1.2.3", level), quiet_paths=("/healthz",)
    )


async def get(app, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(path, headers=headers)
    await asyncio.sleep(0)  # access events are written when the event-loop step ends
    return response


async def test_caller_request_id_is_kept_returned_and_logged(capsys):
    response = await get(wrapped(), "/echo", **{"X-Request-ID": "abc-123"})
    assert response.headers.get_list("x-request-id") == ["abc-123"]  # the app's own is replaced
    assert response.json() == {"request_id": "abc-123"}
    handled, access = log_events(capsys.readouterr().out)
    assert handled["message"] == "handled"
    assert handled["http"]["request"]["id"] == "abc-123"
    assert handled["model"]["version"] == "3"
    assert handled["service"] == {"name": "testsvc", "version": "1.2.3"}
    assert handled["event"]["dataset"] == "brainscan.testsvc"
    assert handled["log.level"] == "info" and "@timestamp" in handled  # ECS keeps these dotted
    assert access["message"] == "request"
    assert access["http"]["request"] == {"id": "abc-123", "method": "GET"}
    assert access["http"]["response"]["status_code"] == 200
    assert access["url"]["path"] == "/echo" and access["event"]["duration"] > 0
    assert current_request_id() == ""  # nothing leaks out of the request


async def test_missing_or_malformed_request_id_is_replaced(capsys):
    app = wrapped()
    made = (await get(app, "/echo")).headers["x-request-id"]
    assert len(made) == 32
    injected = await get(app, "/echo", **{"X-Request-ID": "bad id\twith a tab"})
    replaced = injected.headers["x-request-id"]
    assert replaced != made and len(replaced) == 32
    access = [e for e in log_events(capsys.readouterr().out) if e["message"] == "request"]
    assert [e["http"]["request"]["id"] for e in access] == [made, replaced]


async def test_quiet_paths_get_an_id_but_no_access_event(capsys):
    response = await get(wrapped(), "/healthz", **{"X-Request-ID": "probe-1"})
    assert response.headers["x-request-id"] == "probe-1"
    assert [e["message"] for e in log_events(capsys.readouterr().out)] == ["handled"]


async def test_a_failing_app_is_logged_as_a_500(capsys):
    with pytest.raises(RuntimeError, match="a bug"):
        await get(wrapped(), "/fail", **{"X-Request-ID": "bug-1"})
    await asyncio.sleep(0)
    (access,) = [e for e in log_events(capsys.readouterr().out) if e["message"] == "request"]
    assert access["http"]["response"]["status_code"] == 500
    assert access["http"]["request"]["id"] == "bug-1"


async def test_above_info_the_id_still_travels_but_no_access_event_is_written(capsys):
    response = await get(wrapped("WARNING"), "/echo", **{"X-Request-ID": "quiet-1"})
    assert response.headers["x-request-id"] == "quiet-1"
    assert response.json() == {"request_id": "quiet-1"}
    assert capsys.readouterr().out == ""
