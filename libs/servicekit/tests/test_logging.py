"""ECS JSON logs: service fields, error fields, third-party records."""

from __future__ import annotations

import logging

import pytest
import structlog
from brainscan_servicekit import configure_logging
from brainscan_servicekit.logging import event_dataset
from servicekit_events import log_events


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
    (event,) = log_events(capsys.readouterr().out)
    assert event["event"]["dataset"] == "brainscan.testsvc"
    assert event["error"]["type"] == "KeyError"
    assert event["error"]["message"] == "'missing-key'"
    assert "Traceback" in event["error"]["stack_trace"]


def test_stdlib_records_leave_out_fields_outside_ecs(capsys):
    configure_logging("testsvc", "1")
    logging.getLogger("uvicorn.error").info("Started %s", "x", extra={"color_message": "\x1b[1m"})
    (event,) = log_events(capsys.readouterr().out)
    assert event["message"] == "Started x"
    assert "color_message" not in event
    assert "original" not in event["log"]
