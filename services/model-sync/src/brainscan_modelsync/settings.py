"""Every knob of model-sync, read from ``MODELSYNC_*`` environment variables."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

from brainscan_manifest.registry_contract import CHALLENGER, PRODUCTION
from brainscan_servicekit import ServiceSettings
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

_MIN_SECRET_LENGTH = 16


class ModelSyncSettings(ServiceSettings):
    """Settings of model-sync; each field is documented where it is declared."""

    model_config = SettingsConfigDict(env_prefix="MODELSYNC_")

    # --- the registry -----------------------------------------------------------------------------
    mlflow_tracking_uri: str = "http://localhost:5000"
    """MLflow tracking/registry server. Credentials, if any, come from MLflow's own variables
    (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD / MLFLOW_TRACKING_TOKEN)."""

    models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["brainscan-mobilenetv2"]
    )
    """Registered models to follow, comma-separated (or a JSON list)."""

    alias: str = PRODUCTION
    """The registry alias whose version is served."""

    challenger_alias: str = CHALLENGER
    """The registry alias whose version runs in shadow: verified and published like the served
    one, at `GET /v1/models/{name}/challenger`, never answered with. Empty: no shadow."""

    follow_legacy_stage: bool = False
    """Older registries: when the alias is not set on a model, serve its latest version in the
    legacy "Production" stage instead."""

    poll_interval: float = Field(30.0, gt=0)
    """Seconds between checks of the registry. The safety net under webhooks: a lost webhook
    delays a change by at most this long."""

    retry_initial_delay: float = Field(1.0, gt=0)
    """Seconds before the first retry after the registry failed; doubles on each further failure,
    up to `poll_interval`."""

    mlflow_timeout: float = Field(10.0, gt=0)
    """Seconds one MLflow request (metadata or artifact download) may take."""

    # --- webhooks ---------------------------------------------------------------------------------
    webhook_secret: SecretStr | None = None
    """Shared secret of MLflow's HMAC-signed webhooks (at least 16 characters). Unset: webhooks
    are off (`POST /v1/webhooks/mlflow` answers 404) and only polling follows the registry."""

    webhook_url: str | None = None
    """The URL at which MLflow reaches this service's webhook endpoint, e.g.
    `http://model-sync:8002/v1/webhooks/mlflow`. Set: the webhook is registered in MLflow (or
    updated) on start. Unset: webhooks are accepted but must be registered by someone else."""

    webhook_name: str = "brainscan-model-sync"
    """Name of the webhook in MLflow; an existing webhook of that name is updated, not
    duplicated."""

    webhook_tolerance_seconds: int = Field(300, ge=1)
    """Largest difference between a webhook's timestamp and this clock; older (or future) ones
    are refused as stale. Delivery IDs seen within this window are refused as replays."""

    # --- cache and publishing ---------------------------------------------------------------------
    cache_dir: Path = Path("model-cache")
    """Where verified packages, the served version and the history are kept, so that model-sync
    restarts and serves without MLflow."""

    cache_max_versions: int = Field(3, ge=1)
    """Verified versions kept per model (the served one always among them); older ones are
    evicted and downloaded again if the alias ever returns to them."""

    history_max_entries: int = Field(200, ge=1)
    """History entries kept per model (oldest dropped first)."""

    long_poll_max_wait: float = Field(60.0, ge=0)
    """Longest `wait` a client may ask of `GET /v1/models/{name}`; larger values are capped."""

    # --- HTTP -------------------------------------------------------------------------------------
    host: str = "0.0.0.0"
    """Interface uvicorn binds to."""

    port: int = Field(8002, ge=1, le=65535)
    """TCP port uvicorn listens on."""

    @field_validator("models", mode="before")
    @classmethod
    def _split_models(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [name.strip() for name in text.split(",") if name.strip()]
        return value

    @field_validator("models")
    @classmethod
    def _models_named(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one registered model to follow")
        if len(set(value)) != len(value):
            raise ValueError(f"a model is listed twice: {value}")
        return value

    @field_validator("webhook_secret", "webhook_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < _MIN_SECRET_LENGTH:
            raise ValueError(f"the webhook secret must have at least {_MIN_SECRET_LENGTH} chars")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"webhook_url must be an http(s) URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _two_different_aliases(self) -> ModelSyncSettings:
        if self.challenger_alias == self.alias:
            raise ValueError(
                f"MODELSYNC_CHALLENGER_ALIAS is the served alias {self.alias!r}: name another"
                " alias, or set it empty for no shadow"
            )
        return self

    @model_validator(mode="after")
    def _url_needs_secret(self) -> ModelSyncSettings:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError(
                "MODELSYNC_WEBHOOK_URL is set but MODELSYNC_WEBHOOK_SECRET is not: "
                "an unsigned webhook would let anyone trigger syncs"
            )
        return self

    @property
    def webhooks_enabled(self) -> bool:
        return self.webhook_secret is not None

    def retry_delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts in a row: doubling from
        ``retry_initial_delay``, at most ``poll_interval``."""
        return min(self.poll_interval, self.retry_initial_delay * 2 ** (failures - 1))
