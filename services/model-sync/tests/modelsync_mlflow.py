"""A real MLflow server set up to deliver webhooks to model-sync on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from brainscan_localstack.mlflow_server import MlflowServer
from cryptography.fernet import Fernet

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


def start_mlflow(root: Path, port: int | None = None, key: str | None = None) -> MlflowServer:
    """`mlflow server` (sqlite + local artifacts) on a free port, or on ``port`` with the
    webhook-secret ``key`` of a server being restarted."""
    server = MlflowServer(root) if port is None else MlflowServer(root, port=port)
    server.encryption_key = key or Fernet.generate_key().decode()
    with pytest.MonkeyPatch.context() as env:
        for name, value in WEBHOOK_SERVER_ENV.items():
            env.setenv(name, value)
        env.setenv("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", server.encryption_key)
        server.start()
    return server
