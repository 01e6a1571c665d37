"""Real servers for model-sync tests: uvicorn on free loopback ports, and a stream of requests.

A port is bound before the app is built, so model-sync can be told the URL at which MLflow will
call its webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from brainscan_inference.app import create_app as create_inference_app
from brainscan_inference.settings import InferenceSettings
from brainscan_modelsync.app import create_app as create_modelsync_app
from brainscan_modelsync.main import ModelSyncServer
from brainscan_modelsync.settings import ModelSyncSettings
from brainscan_testsupport.onnx_models import QUADRANT_SIZE as IMAGE_SIZE

SECRET = "test-webhook-secret-0123456789"


class ServerThread:
    """uvicorn serving one app in a thread, on a socket bound at construction (a free port, or
    ``port`` to come back where a stopped server was)."""

    def __init__(self, port: int = 0) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", port))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = None
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self, app, server_class: type[uvicorn.Server] = uvicorn.Server) -> ServerThread:
        self.app = app
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=2
        )
        self.server = server_class(config)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.socket])),
            daemon=True,
            name=f"uvicorn-{self.port}",
        )
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self.server is not None and self.thread is not None and self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(timeout=30)
        self.socket.close()


def wait_until(condition: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if condition():
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:g} s: {what or condition}")
        time.sleep(0.02)


def modelsync_settings(
    tracking_uri: str, model: str, cache_dir: Path, **overrides: object
) -> ModelSyncSettings:
    values: dict[str, object] = {
        "mlflow_tracking_uri": tracking_uri,
        "models": [model],
        "cache_dir": cache_dir,
        "poll_interval": 60.0,
        "retry_initial_delay": 0.2,
        "mlflow_timeout": 5.0,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return ModelSyncSettings(**values)


def start_modelsync(
    servers: list[ServerThread],
    tracking_uri: str,
    model: str,
    cache_dir: Path,
    *,
    webhooks: bool = True,
    port: int = 0,
    **overrides: object,
) -> ServerThread:
    """model-sync on a free port, served as ``brainscan-model-sync`` serves it; with
    ``webhooks`` it registers its webhook in MLflow."""
    thread = ServerThread(port)
    servers.append(thread)
    if webhooks:
        overrides = {
            "webhook_secret": SECRET,
            "webhook_url": f"{thread.url}/v1/webhooks/mlflow",
            "webhook_name": f"model-sync-{model}",
            **overrides,
        }
    settings = modelsync_settings(tracking_uri, model, cache_dir, **overrides)
    return thread.start(create_modelsync_app(settings), ModelSyncServer)


def start_inference(
    servers: list[ServerThread], modelsync_url: str, model: str, cache_dir: Path
) -> ServerThread:
    """An inference replica following ``model`` on model-sync."""
    settings = InferenceSettings(
        model_source="modelsync",
        modelsync_url=modelsync_url,
        modelsync_model=model,
        modelsync_wait=5.0,
        modelsync_timeout=5.0,
        modelsync_cache_dir=cache_dir,
        intra_op_threads=1,
        max_batch_size=4,
        log_level="WARNING",
    )
    thread = ServerThread()
    servers.append(thread)
    return thread.start(create_inference_app(settings))


def served_version(inference: ServerThread, model: str) -> str | None:
    """The version an inference replica serves (None before it has loaded one)."""
    response = httpx.get(f"{inference.url}/v2/models/{model}", timeout=5)
    return response.json()["versions"][0] if response.status_code == 200 else None


def published_version(modelsync: ServerThread, model: str) -> str | None:
    response = httpx.get(f"{modelsync.url}/v1/models/{model}", timeout=5)
    return response.json()["version"] if response.status_code == 200 else None


def history(modelsync: ServerThread, model: str) -> list[dict]:
    return httpx.get(f"{modelsync.url}/v1/models/{model}/history", timeout=5).json()["entries"]


class RequestStream:
    """Clients sending inference requests back to back; every answer is recorded."""

    def __init__(self, url: str, model: str, clients: int = 2) -> None:
        image = np.random.default_rng(0).integers(0, 256, (1, IMAGE_SIZE, IMAGE_SIZE, 3))
        self.body = {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1, IMAGE_SIZE, IMAGE_SIZE, 3],
                    "datatype": "UINT8",
                    "data": image.ravel().tolist(),
                }
            ]
        }
        self.url = f"{url}/v2/models/{model}/infer"
        self._stop = threading.Event()
        self.answers: list[tuple[int, str | None]] = []
        self.errors: list[str] = []
        self._threads = [
            threading.Thread(target=self._run, daemon=True, name=f"stream-{i}")
            for i in range(clients)
        ]

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(self.url, json=self.body)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                version = response.json().get("model_version") if response.is_success else None
                self.answers.append((response.status_code, version))

    def __enter__(self) -> RequestStream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def count(self) -> int:
        return len(self.answers)

    def failures(self) -> list[object]:
        return [a for a in self.answers if a[0] != 200] + list(self.errors)


def dead_url() -> str:
    """An http URL on loopback where nothing listens (a registry that is down)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"
