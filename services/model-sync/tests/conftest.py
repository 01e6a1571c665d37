"""Fixtures: a real MLflow server that can call webhooks on loopback, registered models, servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from brainscan_localstack.mlflow_server import MlflowServer
from brainscan_modelsync.mlflow_registry import configure_mlflow_http
from modelsync_mlflow import start_mlflow
from modelsync_registry import RegistryHelper
from modelsync_servers import ServerThread

# model-sync sets these process-wide for MLflow's client; restored after each test.
_MLFLOW_CLIENT_ENV = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    """One MLflow server for the session, always stopped."""
    server = start_mlflow(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_client_without_retries() -> None:
    """MLflow's client as model-sync sets it up: no retries of its own, a short timeout."""
    configure_mlflow_http(timeout=5)


@pytest.fixture(autouse=True)
def _restore_mlflow_client_env() -> Iterator[None]:
    original = {name: os.environ.get(name) for name in _MLFLOW_CLIENT_ENV}
    yield
    for name, value in original.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def model_name() -> str:
    """A registered model name no other test uses."""
    return f"brainscan-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def registry(mlflow_server, model_name) -> RegistryHelper:
    return RegistryHelper(mlflow_server.url, model_name)


@pytest.fixture
def servers(mlflow_server) -> Iterator[list[ServerThread]]:
    """Servers a test starts (append to the list); stopped afterwards, their webhooks removed."""
    running: list[ServerThread] = []
    yield running
    for server in reversed(running):
        server.stop()
    _delete_test_webhooks(mlflow_server)


def _delete_test_webhooks(mlflow_server: MlflowServer) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=mlflow_server.url)
    try:
        for hook in client.list_webhooks(max_results=1000):
            if hook.name.startswith("model-sync-brainscan-test-"):
                client.delete_webhook(hook.webhook_id)
    except MlflowException:
        pass  # the server was stopped by the test
