"""Shared plumbing for brainscan's FastAPI services: ECS JSON logging, request IDs, CPU count,
the settings base, the error shape and running under uvicorn."""

from .access_log import AccessLog
from .cpus import usable_cpus
from .logging import configure_logging, get_logger
from .request_id import RequestIdMiddleware, current_request_id, new_request_id
from .serve import serve, server_config
from .settings import ServiceSettings

__all__ = [
    "AccessLog",
    "RequestIdMiddleware",
    "ServiceSettings",
    "configure_logging",
    "current_request_id",
    "get_logger",
    "new_request_id",
    "serve",
    "server_config",
    "usable_cpus",
]
