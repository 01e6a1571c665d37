"""Structured JSON logs in the Elastic Common Schema, one line per event on stdout.

Filebeat ships stdout to Logstash/Elasticsearch; field names follow ECS so that Kibana
dashboards work without per-service parsing. Use dotted keys (``"http.request.id"``): the
ECS formatter nests them.
"""

from __future__ import annotations

import logging
import sys

import ecs_logging
import structlog

# log.original left ECS in 8.0 (it repeats `message`); color_message is uvicorn's ANSI copy of it.
_NOT_ECS_STDLIB_FIELDS = ("log.original", "color_message")


def event_dataset(service_name: str) -> str:
    """``brainscan-model-sync`` -> ``brainscan.model_sync``: a valid data stream dataset name."""
    return "brainscan." + service_name.removeprefix("brainscan-").replace("-", "_")


def add_error_fields(_logger, _method, event_dict):
    """ECS ``error.type`` and ``error.message`` for a logged exception (the formatter adds
    ``error.stack_trace``), as the standard library formatter does."""
    exc_info = event_dict.get("exc_info")
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif exc_info and not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if isinstance(exc_info, tuple) and exc_info[0] is not None:
        event_dict.setdefault("error.type", exc_info[0].__name__)
        event_dict.setdefault("error.message", str(exc_info[1]))
    return event_dict


def level_number(level: str) -> int:
    """``"info"`` -> ``logging.INFO``; an unknown name is a ValueError."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")
    return numeric_level


def configure_logging(service_name: str, service_version: str, level: str = "INFO") -> None:
    """Route structlog and the standard library's logging (uvicorn, httpx) to ECS JSON on stdout."""
    numeric_level = level_number(level)
    service_fields = {
        "service.name": service_name,
        "service.version": service_version,
        "event.dataset": event_dataset(service_name),
    }

    def add_service_fields(_logger, _method, event_dict):
        for key, value in service_fields.items():
            event_dict.setdefault(key, value)
        return event_dict

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_service_fields,
            add_error_fields,
            structlog.processors.format_exc_info,
            ecs_logging.StructlogFormatter(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # No fixed file: each logger takes sys.stdout when made, so a replaced stdout is honoured.
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )

    # Third-party loggers (uvicorn errors, onnxruntime, httpx) in the same ECS JSON shape.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        ecs_logging.StdlibFormatter(extra=service_fields, exclude_fields=_NOT_ECS_STDLIB_FIELDS)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric_level)
    # Access lines come from the request-ID middleware in ECS form; uvicorn's would duplicate them.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(numeric_level, logging.WARNING))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
