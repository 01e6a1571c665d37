"""ECS JSON logs and X-Request-ID handling, through a real ASGI app."""

from __future__ import annotations

import json

import pytest
import structlog
from brainscan_servicekit import RequestIdMiddleware, configure_logging, current_request_id
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient


def echo(_request):
    structlog.get_logger().info("handled", **{"model.version": "3"})
    return JSONResponse({"request_id": current_request_id()})


@pytest.fixture
def client(capsys):
    configure_logging("testsvc", "1.2.3")
    app = Starlette(routes=[Route("/echo", echo)])
    app.add_middleware(RequestIdMiddleware, skip_access_log=("/healthz",))
    with TestClient(app) as test_client:
        yield test_client


def log_lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_caller_request_id_is_kept_returned_and_logged(client, capsys):
    response = client.get("/echo", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json() == {"request_id": "abc-123"}
    handled, access = log_lines(capsys)[-2:]
    assert handled["message"] == "handled"
    assert handled["http"]["request"]["id"] == "abc-123"
    assert handled["model"]["version"] == "3"
    assert handled["service"] == {"name": "testsvc", "version": "1.2.3"}
    assert handled["event"]["dataset"] == "brainscan.testsvc"
    assert (
        handled["log.level"] == "info" and "@timestamp" in handled
    )  # ecs-logging keeps these dotted
    assert access["http"]["response"]["status_code"] == 200
    assert access["url"]["path"] == "/echo" and access["event"]["duration"] > 0


def test_missing_or_malformed_request_id_is_replaced(client):
    made = client.get("/echo").headers["x-request-id"]
    assert len(made) == 32
    injected = client.get("/echo", headers={"X-Request-ID": "bad id\nwith newline"})
    assert injected.headers["x-request-id"] != "bad id\nwith newline"
    assert len(injected.headers["x-request-id"]) == 32


def test_unknown_log_level_is_an_error():
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("x", "1", level="LOUD")
