"""Shared plumbing for brainscan's FastAPI services: ECS JSON logging, request IDs, CPU count."""

from .access_log import AccessLog
from .cpus import usable_cpus
from .logging import configure_logging, get_logger
from .request_id import RequestIdMiddleware, current_request_id, new_request_id

__all__ = [
    "AccessLog",
    "RequestIdMiddleware",
    "configure_logging",
    "current_request_id",
    "get_logger",
    "new_request_id",
    "usable_cpus",
]
