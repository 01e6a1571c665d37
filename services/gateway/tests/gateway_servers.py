"""Real servers for tests: a tiny ONNX model package and uvicorn servers on free ports.

The tiny model is brainscan_testsupport's ``tiny_classifier``, as in the inference service's own
tests: image -> per-pixel features ("feature map") -> global mean -> dense -> softmax, so class
activation maps work end to end.
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
from brainscan_gateway.settings import GatewaySettings
from brainscan_inference.settings import InferenceSettings
from brainscan_manifest import InputSpec
from brainscan_manifest.preprocess import to_input_array
from brainscan_testsupport.packages import tiny_package
from gateway_images import mri_like
from PIL import Image

MODEL_NAME = "tiny-brainscan"
INPUT_SIZE = 16


def write_package(
    directory: Path,
    *,
    seed: int = 0,
    with_cam: bool = True,
    guard: bool = False,
    size: int = INPUT_SIZE,
) -> Path:
    """A tiny model package (``brainscan_testsupport.packages.tiny_package``: 16x16 uint8 input,
    6 features) in ``directory``; with ``guard``, an out-of-distribution guard fitted on
    MRI-like slices (``gateway_images.mri_like``)."""
    return tiny_package(
        directory,
        name=MODEL_NAME,
        size=size,
        features=6,
        seed=seed,
        with_cam=with_cam,
        guard_inputs=in_distribution_inputs() if guard else None,
        false_alarm_rate=0.05,
        manifest_fields={"default_threshold": 0.5, "metrics": {"macro_f1": 0.5}},
    )


def in_distribution_inputs(count: int = 240) -> np.ndarray:
    """Model inputs of MRI-like slices of several sizes, as the gateway makes them."""
    spec = InputSpec(name="image", height=INPUT_SIZE, width=INPUT_SIZE)
    slices = (mri_like(int(size), seed) for seed, size in enumerate(np.linspace(40, 320, count)))
    return np.stack([to_input_array(Image.fromarray(pixels), spec) for pixels in slices])


def bound_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class RunningServer:
    """A uvicorn server in a thread on a loopback port; can be stopped and started again on
    the same port (to test that the gateway recovers when inference comes back)."""

    def __init__(self, app_factory: Callable[[], object], port: int = 0) -> None:
        self.app_factory = app_factory
        self.socket = bound_socket(port)
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> RunningServer:
        if self.socket is None:
            self.socket = bound_socket(self.port)
        config = uvicorn.Config(
            self.app_factory(),
            log_config=None,
            access_log=False,
            lifespan="on",
            proxy_headers=False,  # as in brainscan_gateway.main: the gateway's setting decides
        )
        self.server = uvicorn.Server(config)
        sock = self.socket
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[sock])),
            daemon=True,
            name=f"uvicorn-{self.port}",
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def wait_until(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.url}{path} did not answer 200")

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.should_exit = True
        assert self.thread is not None
        self.thread.join(timeout=30)
        self.socket.close()
        self.socket = None
        self.server = None


def inference_settings(model_dir: Path) -> InferenceSettings:
    return InferenceSettings(
        model_dir=model_dir,
        model_poll_interval=0.2,
        intra_op_threads=1,
        max_batch_size=8,
        queue_capacity=64,
        log_level="WARNING",
    )


def gateway_settings(inference_url: str, **overrides: object) -> GatewaySettings:
    values: dict[str, object] = {
        "inference_url": inference_url,
        "model_name": MODEL_NAME,
        "log_level": "WARNING",
        "rate_limit_per_minute": 0,
        "breaker_open_seconds": 1.0,
        "breaker_failure_threshold": 2,
        "inference_retry_backoff": 0.01,
        "inference_timeout": 5.0,
    }
    values.update(overrides)
    return GatewaySettings(**values)
