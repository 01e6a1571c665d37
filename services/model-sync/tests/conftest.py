"""Fixtures: a real MLflow server that can call webhooks on loopback, registered models, servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from brainscan_training.mlflow_server import MlflowServer
from cryptography.fernet import Fernet
from modelsync_registry import RegistryHelper
from modelsync_servers import ServerThread

# MLflow refuses webhooks to private addresses and plain http unless told otherwise; its webhook
# list is cached for 60 s by default (a webhook registered mid-session would be missed), and the
# key that encrypts webhook secrets must be fixed for a restarted server to read them back.
WEBHOOK_SERVER_ENV = {
    "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
    "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
    "MLFLOW_WEBHOOK_CACHE_TTL": "0",
    "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "5",
}
# model-sync sets these process-wide for MLflow's client; restored after each test.
_MLFLOW_CLIENT_ENV = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
)


def start_mlflow(root, port: int | None = None, key: str | None = None) -> MlflowServer:
    """A real `mlflow server` (sqlite + local artifacts) that delivers webhooks on loopback."""
    server = MlflowServer(root) if port is None else MlflowServer(root, port=port)
    server.encryption_key = key or Fernet.generate_key().decode()
    with pytest.MonkeyPatch.context() as env:
        for name, value in WEBHOOK_SERVER_ENV.items():
            env.setenv(name, value)
        env.setenv("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", server.encryption_key)
        server.start()
    return server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    """One MLflow server for the session, always stopped."""
    server = start_mlflow(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        server.stop()


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
