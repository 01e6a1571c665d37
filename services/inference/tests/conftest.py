"""Fixtures: tiny real model packages (brainscan_testsupport), real uvicorn servers on free ports.

Tests use these through fixtures only (never by importing this module), so they work under
any pytest import mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from brainscan_inference.app import create_app
from brainscan_inference.main import SERVER_OPTIONS
from brainscan_inference.settings import InferenceSettings
from brainscan_servicekit import server_config
from brainscan_testsupport.onnx_models import CLASSES
from brainscan_testsupport.packages import tiny_package

IMAGE_SIZE = 8


def write_package(directory: Path, *, guard: bool = False, seed: int = 0, **options) -> Path:
    """A tiny real model package (``brainscan_testsupport.packages.tiny_package``, name "tiny",
    8x8 input) in ``directory``; ``guard`` adds an out-of-distribution guard fitted on random
    images."""
    guard_inputs = None
    if guard:
        layout, dtype = options.get("layout", "NHWC"), options.get("dtype", "uint8")
        shape = (
            (200, IMAGE_SIZE, IMAGE_SIZE, 3)
            if layout == "NHWC"
            else (200, 3, IMAGE_SIZE, IMAGE_SIZE)
        )
        pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
        guard_inputs = pixels if dtype == "uint8" else pixels / 255.0
    return tiny_package(directory, size=IMAGE_SIZE, seed=seed, guard_inputs=guard_inputs, **options)


@pytest.fixture
def package_factory() -> Callable[..., Path]:
    """``write_package(directory, **options)``: a tiny real model package."""
    return write_package


@pytest.fixture
def classes() -> list[str]:
    return list(CLASSES)


@pytest.fixture
def image_size() -> int:
    return IMAGE_SIZE


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A directory holding one tiny package, version 1 (``<dir>/1/``)."""
    write_package(tmp_path / "models" / "1")
    return tmp_path / "models"


def make_settings(model_dir: Path, **overrides: object) -> InferenceSettings:
    """Settings for tests: one onnxruntime thread, quick polling, small batches."""
    values: dict[str, object] = {
        "model_dir": model_dir,
        "model_poll_interval": 0.2,
        "intra_op_threads": 1,
        "max_batch_size": 8,
        "queue_capacity": 64,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return InferenceSettings(**values)


@pytest.fixture
def settings_factory() -> Callable[..., InferenceSettings]:
    return make_settings


class RunningServer:
    """A uvicorn server running ``app`` in a thread, on a socket bound to a free port."""

    def __init__(self, app) -> None:
        self.app = app
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = server_config(app, lifespan="on", **SERVER_OPTIONS)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"uvicorn-{self.port}")

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.socket]))

    def start(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Block until /v2/health/ready says 200 (model loaded and warmed up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError("service did not become ready")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RunningServer]]:
    """``serve(settings_or_app, ready=True)``: start a real server; stopped after the test."""
    running: list[RunningServer] = []

    def start(target, *, ready: bool = True, **app_options) -> RunningServer:
        app = create_app(target, **app_options) if isinstance(target, InferenceSettings) else target
        server = RunningServer(app).start()
        running.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def server(serve, model_dir: Path) -> RunningServer:
    """A ready service on the tiny model (name "tiny", version "1")."""
    return serve(make_settings(model_dir))


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory) -> Iterator[RunningServer]:
    """One ready service for a whole test module (read-only tests)."""
    directory = tmp_path_factory.mktemp("shared") / "models"
    write_package(directory / "1")
    server = RunningServer(create_app(make_settings(directory))).start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def images(image_size: int) -> Callable[[int], np.ndarray]:
    """``images(n)``: n random uint8 NHWC images, the same for the same n."""

    def make(n: int, seed: int = 1) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (n, image_size, image_size, 3), dtype=np.uint8)

    return make


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the service's loop), via anyio's pytest plugin."""
    return "asyncio"
