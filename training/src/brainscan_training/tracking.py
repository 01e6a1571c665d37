"""Talking to the MLflow tracking server with bounded patience and a readable error."""

from __future__ import annotations

import os
import time

import httpx

DEFAULT_TRACKING_URI = "http://127.0.0.1:5000"


class TrackingUnavailable(RuntimeError):
    """MLflow cannot be reached; raised after bounded retries with what to do about it."""


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def bound_client_retries() -> None:
    """MLflow's client retries for minutes by default; a pipeline step should fail fast."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")


def require_tracking_server(uri: str | None = None, attempts: int = 5, delay: float = 1.0) -> str:
    """Return the URI once its /health answers; raise TrackingUnavailable after `attempts` tries."""
    uri = uri or tracking_uri()
    bound_client_retries()
    if not uri.startswith(("http://", "https://")):
        return uri  # a local file or database store needs no server
    last_error = "no answer"
    for attempt in range(attempts):
        try:
            response = httpx.get(f"{uri.rstrip('/')}/health", timeout=3.0)
            if response.status_code == 200:
                return uri
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        if attempt < attempts - 1:
            time.sleep(delay * 2**attempt)
    raise TrackingUnavailable(
        f"MLflow tracking server {uri} is not reachable after {attempts} attempts ({last_error}). "
        "Start one with `make mlflow` or point MLFLOW_TRACKING_URI at a running server."
    )


def connect(uri: str | None = None) -> str:
    """Check the server answers, then point every MLflow client in this process at it."""
    import mlflow

    uri = require_tracking_server(uri)
    mlflow.set_tracking_uri(uri)
    return uri
