"""ECS JSON logs and X-Request-ID handling, through a real ASGI app."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from brainscan_servicekit import RequestIdMiddleware, configure_logging, current_request_id
from brainscan_servicekit.logging import event_dataset
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


def test_event_dataset_is_a_valid_data_stream_dataset():
    assert event_dataset("brainscan-model-sync") == "brainscan.model_sync"
    assert event_dataset("brainscan-gateway") == "brainscan.gateway"
    assert event_dataset("testsvc") == "brainscan.testsvc"


def test_logged_exception_carries_ecs_error_fields(capsys):
    configure_logging("brainscan-testsvc", "1")
    try:
        raise KeyError("missing-key")
    except KeyError:
        structlog.get_logger().exception("it failed")
    (event,) = log_lines(capsys)
    assert event["event"]["dataset"] == "brainscan.testsvc"
    assert event["error"]["type"] == "KeyError"
    assert event["error"]["message"] == "'missing-key'"
    assert "Traceback" in event["error"]["stack_trace"]


def test_stdlib_records_leave_out_fields_outside_ecs(capsys):
    configure_logging("testsvc", "1")
    logging.getLogger("uvicorn.error").info("Started %s", "x", extra={"color_message": "\x1b[1m"})
    (event,) = log_lines(capsys)
    assert event["message"] == "Started x"
    assert "color_message" not in event
    assert "original" not in event["log"]
