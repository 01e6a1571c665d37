"""The serving stack as local processes: inference and gateway (and model-sync once a registry
model source is wired), on the design's ports, for `make demo` and local load tests."""

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


def start_serving(
    stack: ExitStack, model_dir: Path, logs: Path, ports: StackPorts = StackPorts()
) -> dict[str, str]:
    """Start inference on a local model package and the gateway in front; return their URLs."""
    inference_url = f"http://127.0.0.1:{ports.inference}"
    gateway_url = f"http://127.0.0.1:{ports.gateway}"
    stack.enter_context(
        ManagedProcess(
            name="inference",
            command=[str(BIN / "brainscan-inference")],
            health_url=f"{inference_url}/v2/health/ready",
            log_path=logs / "inference.log",
            env={
                "INFERENCE_MODEL_SOURCE": "local",
                "INFERENCE_MODEL_DIR": str(model_dir.resolve()),
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
                "GATEWAY_HOST": "127.0.0.1",
                "GATEWAY_PORT": str(ports.gateway),
            },
        )
    )
    return {"inference": inference_url, "gateway": gateway_url}
