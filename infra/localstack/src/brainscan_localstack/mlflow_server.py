"""A local MLflow tracking + registry server (sqlite backend, local artifacts).

Used by `make demo` (port 5000 unless one already answers there) and by the tests (a free port
each). One worker: several workers cost ~2.9 GB and stall reused connections.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .processes import ManagedProcess, free_port, is_healthy

__all__ = ["MlflowServer", "free_port", "is_healthy"]


@dataclass
class MlflowServer:
    root: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    env: Mapping[str, str] = field(default_factory=dict)  # more server settings (webhooks, ...)
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 90.0) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--host", self.host,
            "--port", str(self.port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{(self.root / 'mlflow.db').resolve()}",
            "--artifacts-destination", str((self.root / "artifacts").resolve()),
        ]  # fmt: skip
        self.process = ManagedProcess(
            name="mlflow",
            command=command,
            health_url=f"{self.url}/health",
            log_path=self.root / "server.log",
            env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **self.env},
        ).start(timeout)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
