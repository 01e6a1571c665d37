"""The serving stack as local processes on the design's ports: model-sync follows the MLflow
registry, inference gets its model from model-sync, the gateway fronts inference. Used by
`make demo` and local load tests."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from .processes import ManagedProcess

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class StackPorts:
    gateway: int = 8000
    inference: int = 8001
    model_sync: int = 8002

    def items(self) -> list[tuple[str, int]]:
        return [("gateway", self.gateway), ("inference", self.inference),
                ("model-sync", self.model_sync)]  # fmt: skip


# What an MLflow server needs before model-sync's webhook can be registered and delivered to
# it on loopback over plain http (docs/model-sync.md#webhooks), plus the encryption key of the
# secrets it stores (a Fernet key; without one it makes a new key at each start).
def mlflow_webhook_settings(encryption_key: str) -> dict[str, str]:
    return {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_CACHE_TTL": "5",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": encryption_key,
    }


def start_serving(
    stack: ExitStack,
    tracking_uri: str,
    model_name: str,
    state: Path,
    ports: StackPorts = StackPorts(),
    webhook_secret: str | None = None,
) -> dict[str, str]:
    """Start model-sync (following the registry's production alias), inference fed by it, and
    the gateway in front; return their URLs. Logs and caches go under `state`.

    With `webhook_secret`, model-sync registers its webhook in MLflow at start, so a promotion
    reaches it at once instead of at the next poll (the MLflow server must allow webhooks to
    http on loopback: `mlflow_webhook_settings`)."""
    sync_url = f"http://127.0.0.1:{ports.model_sync}"
    inference_url = f"http://127.0.0.1:{ports.inference}"
    gateway_url = f"http://127.0.0.1:{ports.gateway}"
    logs = state / "logs"
    webhook = {}
    if webhook_secret:
        webhook = {
            "MODELSYNC_WEBHOOK_SECRET": webhook_secret,
            "MODELSYNC_WEBHOOK_URL": f"{sync_url}/v1/webhooks/mlflow",
        }
    stack.enter_context(
        ManagedProcess(
            name="model-sync",
            command=[str(BIN / "brainscan-model-sync")],
            health_url=f"{sync_url}/readyz",
            log_path=logs / "model-sync.log",
            env={
                "MODELSYNC_MLFLOW_TRACKING_URI": tracking_uri,
                "MODELSYNC_MODELS": model_name,
                "MODELSYNC_CACHE_DIR": str((state / "model-sync").resolve()),
                "MODELSYNC_POLL_INTERVAL": "5",
                "MODELSYNC_HOST": "127.0.0.1",
                "MODELSYNC_PORT": str(ports.model_sync),
                **webhook,
            },
        )
    )
    stack.enter_context(
        ManagedProcess(
            name="inference",
            command=[str(BIN / "brainscan-inference")],
            health_url=f"{inference_url}/v2/health/ready",
            log_path=logs / "inference.log",
            env={
                "INFERENCE_MODEL_SOURCE": "modelsync",
                "INFERENCE_MODELSYNC_URL": sync_url,
                "INFERENCE_MODEL_NAME": model_name,
                "INFERENCE_MODELSYNC_CACHE_DIR": str((state / "inference-cache").resolve()),
                "INFERENCE_HOST": "127.0.0.1",
                "INFERENCE_PORT": str(ports.inference),
            },
        )
    )
    stack.enter_context(
        ManagedProcess(
            name="gateway",
            command=[str(BIN / "brainscan-gateway")],
            health_url=f"{gateway_url}/readyz",
            log_path=logs / "gateway.log",
            env={
                "GATEWAY_INFERENCE_URL": inference_url,
                "GATEWAY_MODEL_NAME": model_name,
                "GATEWAY_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(ports.gateway),
            },
        )
    )
    return {"model-sync": sync_url, "inference": inference_url, "gateway": gateway_url}
