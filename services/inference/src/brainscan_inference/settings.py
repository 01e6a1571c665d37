"""Every knob of the inference service, read from ``INFERENCE_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from brainscan_servicekit import ServiceSettings, usable_cpus
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict


class InferenceSettings(ServiceSettings):
    """Settings of the inference service; each field is documented where it is declared."""

    model_config = SettingsConfigDict(env_prefix="INFERENCE_")

    # --- where models come from ---------------------------------------------------------------
    model_source: Literal["local", "modelsync"] = "local"
    """Where model packages come from. `local`: a directory on disk (INFERENCE_MODEL_DIR).
    `modelsync`: the model-sync service (INFERENCE_MODELSYNC_URL), followed by long poll."""

    model_dir: Path = Path("models")
    """Local source: a model package (`model.onnx` + `manifest.json`) or a directory of versions
    (`<dir>/<version>/model.onnx` + `manifest.json`); the highest version is served."""

    model_name: str | None = None
    """Name the model is served under. Packages whose manifest has another name are refused.
    Empty: serve under whatever name the package's manifest gives."""

    model_version: str | None = None
    """Pin one version of a versioned directory instead of serving the highest (e.g. a rollback)."""

    model_poll_interval: float = Field(5.0, ge=0.0)
    """Seconds between checks of the model source for a new version; 0 checks only at start-up
    and on `POST /v2/repository/models/{name}/load`."""

    modelsync_url: str = "http://localhost:8002"
    """model-sync source: base URL of the model-sync service."""

    modelsync_model: str | None = None
    """model-sync source: registered model to follow. Unset: INFERENCE_MODEL_NAME."""

    modelsync_wait: float = Field(30.0, gt=0, le=600)
    """model-sync source: seconds one long poll may wait for a new version."""

    modelsync_timeout: float = Field(10.0, gt=0)
    """model-sync source: seconds to connect, or to wait for data beyond the long poll itself."""

    modelsync_cache_dir: Path = Path("model-cache")
    """model-sync source: where downloaded packages are kept (the newest two versions)."""

    shadow: bool = True
    """Hold a challenger in shadow beside the served model (its own session and batcher),
    answered only to a request for its version: model-sync's challenger with the model-sync
    source, the package in `challenger_dir` with the local one. false: serve production alone."""

    challenger_dir: Path | None = None
    """local source: a directory laid out like `model_dir` whose package (or highest version)
    is the challenger; missing or empty: no challenger. Unset: none is followed."""

    # --- onnxruntime ----------------------------------------------------------------------------
    intra_op_threads: int = Field(1, ge=0)
    """onnxruntime threads used inside one operator; 0: one per CPU this process may use (its
    CPU affinity and its cgroup's CPU quota, where onnxruntime's own choice would be every core
    of the node). 1 by default: on the project's light model it spent 20-60 % less CPU per
    request and served as much or more up to concurrency 8 on an idle 2-core machine (more at
    32 with 2 threads); a heavy model wants 0 (MobileNetV2 a1.0 224 px: twice the throughput at
    the same CPU per image). Measured figures in docs/inference.md."""

    inter_op_threads: int = Field(1, ge=0)
    """onnxruntime threads running independent operators in parallel; above 1 the session runs in
    parallel execution mode (measured 1.6-2.5x the CPU per request here), 1 sequential."""

    thread_spinning: bool = False
    """Let onnxruntime's idle threads spin waiting for work (both pools). Off by default: spinning
    threads take the cores the event loop and the model need; measured on, the service served
    20-45 % fewer requests at 1.5x the CPU per request."""

    graph_optimization_level: Literal["disabled", "basic", "extended", "all"] = "all"
    """onnxruntime graph optimisation level applied when a session is created."""

    # --- dynamic batching ----------------------------------------------------------------------
    max_batch_size: int = Field(32, ge=1, le=1024)
    """Largest batch (in images) per onnxruntime call; also the most images one request may send."""

    model_workers: int = Field(0, ge=0)
    """Batches computed at once, each by one onnxruntime call in its own thread; 0 (default): one
    per CPU this process may use. With ``intra_op_threads`` 1 that keeps every core on the
    model: measured here, one call at a time left the second core idle and served fewer requests
    than a naive one-call-per-request server (docs/inference.md). Keep ``model_workers`` x
    ``intra_op_threads`` near the CPU count: more only makes the calls take turns."""

    max_queue_delay_ms: float = Field(0.0, ge=0.0, le=10_000.0)
    """How long a batch may wait for more requests once one is queued. 0 (default): no added
    latency, a batch is whatever is queued when the model becomes free."""

    queue_capacity: int = Field(256, ge=1)
    """Requests that may wait for the model; one more is refused with 503 + Retry-After."""

    retry_after_seconds: int = Field(1, ge=0)
    """Value of the Retry-After header sent with 503 (not ready, queue full)."""

    # --- HTTP ------------------------------------------------------------------------------------
    host: str = "0.0.0.0"
    """Interface uvicorn binds to."""

    port: int = Field(8001, ge=1, le=65535)
    """TCP port uvicorn listens on."""

    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """Largest inference request body accepted (after decompression); larger ones get 413."""

    max_json_request_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    """Largest JSON accepted in an inference request (after decompression): the whole body of
    a JSON request, the JSON header of a binary one; larger gets 413. Lower than the binary
    limit because JSON tensors cost 20-100 ms of CPU per MB to decode, binary ones next to none."""

    repository_api: bool = False
    """Serve `POST /v2/repository/index` and `.../models/{name}/load` (reload from the source
    now), to callers holding INFERENCE_REPOSITORY_TOKEN. Off: those paths are 404."""

    repository_token: SecretStr | None = None
    """Shared token the repository API requires as `Authorization: Bearer <token>` (at least 16
    characters); required when INFERENCE_REPOSITORY_API is on."""

    @field_validator("model_name", "model_version", "modelsync_model", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _repository_api_has_a_token(self) -> InferenceSettings:
        if not self.repository_api:
            return self
        token = self.repository_token.get_secret_value() if self.repository_token else ""
        if not token:
            raise ValueError(
                "INFERENCE_REPOSITORY_API=true needs INFERENCE_REPOSITORY_TOKEN: the repository"
                " API reloads models, so it is never open to anyone who reaches the port"
            )
        if len(token) < 16:
            raise ValueError("INFERENCE_REPOSITORY_TOKEN must be at least 16 characters long")
        return self

    @model_validator(mode="after")
    def _modelsync_knows_the_model(self) -> InferenceSettings:
        if self.model_source == "modelsync" and self.followed_model is None:
            raise ValueError(
                "INFERENCE_MODEL_SOURCE=modelsync needs the registered model to follow:"
                " set INFERENCE_MODELSYNC_MODEL (or INFERENCE_MODEL_NAME)"
            )
        return self

    @property
    def followed_model(self) -> str | None:
        """The registered model the model-sync source follows."""
        return self.modelsync_model or self.model_name

    @property
    def batch_workers(self) -> int:
        """``model_workers`` with 0 resolved to the CPUs this process may use."""
        return self.model_workers or usable_cpus()

    @property
    def max_queue_delay(self) -> float:
        """The batching delay in seconds."""
        return self.max_queue_delay_ms / 1000.0
