"""The demo's webhook wiring on the real programs: an MLflow server started with
`mlflow_webhook_settings` accepts the webhook model-sync registers when it is given a secret and
its own URL, as `start_serving` gives them (over http, on loopback)."""

from __future__ import annotations

import secrets
import time

import httpx
from brainscan_localstack.mlflow_server import MlflowServer
from brainscan_localstack.processes import ManagedProcess, free_port
from brainscan_localstack.stack import BIN, mlflow_webhook_settings
from cryptography.fernet import Fernet


def test_model_sync_registers_its_webhook_in_the_demos_mlflow(tmp_path):
    settings = mlflow_webhook_settings(Fernet.generate_key().decode())
    with MlflowServer(tmp_path / "mlflow", env=settings) as mlflow_server:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "MODELSYNC_MLFLOW_TRACKING_URI": mlflow_server.url,
            "MODELSYNC_MODELS": "brainscan-webhook-test",
            "MODELSYNC_CACHE_DIR": str(tmp_path / "cache"),
            "MODELSYNC_HOST": "127.0.0.1",
            "MODELSYNC_PORT": str(port),
            "MODELSYNC_WEBHOOK_SECRET": secrets.token_hex(24),
            "MODELSYNC_WEBHOOK_URL": f"{url}/v1/webhooks/mlflow",
        }
        command = [str(BIN / "brainscan-model-sync")]
        with ManagedProcess("model-sync", command, f"{url}/healthz", tmp_path / "ms.log", env):
            deadline = time.monotonic() + 30
            while True:
                # 503 until a model is served; the webhook's state is in the body either way.
                webhook = httpx.get(f"{url}/readyz", timeout=5).json()["webhook"]
                if webhook["state"] != "pending" or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
    assert webhook["state"] == "registered", webhook
    assert webhook["detail"].endswith(f"-> {url}/v1/webhooks/mlflow")
