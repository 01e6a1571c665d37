"""Fixtures: a real inference service (tiny ONNX model) and real gateways, on free ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from brainscan_gateway.app import create_app as create_gateway
from brainscan_inference.app import create_app as create_inference
from gateway_servers import RunningServer, gateway_settings, inference_settings, write_package
from gateway_shadow import ShadowStack


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """Versioned model directory with version 1 of the tiny model."""
    directory = tmp_path_factory.mktemp("models")
    write_package(directory / "1")
    return directory


@pytest.fixture(scope="session")
def inference(model_dir: Path) -> Iterator[RunningServer]:
    """A real, ready inference service on the tiny model, shared by the whole session."""
    server = RunningServer(lambda: create_inference(inference_settings(model_dir))).start()
    try:
        server.wait_until("/v2/health/ready")
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., RunningServer]]:
    """``start_gateway(inference_url, **settings)``: a real gateway; stopped after the test."""
    running: list[RunningServer] = []

    def start(inference_url: str, **overrides: object) -> RunningServer:
        settings = gateway_settings(inference_url, **overrides)
        server = RunningServer(lambda: create_gateway(settings)).start()
        running.append(server)
        server.wait_until("/healthz")
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture(scope="module")
def gateway(inference: RunningServer) -> Iterator[RunningServer]:
    """A gateway in front of the shared inference service, with default checks and no keys."""
    settings = gateway_settings(inference.url, max_upload_bytes=2 * 1024 * 1024)
    server = RunningServer(lambda: create_gateway(settings)).start()
    try:
        server.wait_until("/readyz")
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(gateway: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


@pytest.fixture
def shadow_stack(tmp_path, start_gateway) -> Iterator[ShadowStack]:
    """Inference serving version 1 and following ``tmp_path/challenger`` for a challenger."""
    models = tmp_path / "models"
    write_package(models / "1")
    settings = inference_settings(models).model_copy(
        update={"challenger_dir": tmp_path / "challenger"}
    )
    inference = RunningServer(lambda: create_inference(settings)).start()
    try:
        inference.wait_until("/v2/health/ready")
        yield ShadowStack(inference, models, tmp_path / "challenger", start_gateway)
    finally:
        inference.stop()
