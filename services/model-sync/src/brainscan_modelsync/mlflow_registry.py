"""The MLflow registry as model-sync sees it: which version to serve, its files, the webhook.

The only module that talks to MLflow. Every call blocks (MLflow's client is built on requests),
so the syncer runs them in worker threads.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
from brainscan_manifest.registry_contract import (
    LEGACY_PRODUCTION_STAGE,
    PACKAGE_FILES,
    PRODUCTION,
    SHA256_TAG,
)
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

WEBHOOK_EVENTS = ["model_version_alias.created", "model_version_alias.deleted"]


class RegistryUnavailable(RuntimeError):
    """MLflow could not be reached or failed; the caller retries later."""


class WebhookUnsupported(RuntimeError):
    """The MLflow server has no webhooks, or refused ours; the message says why."""


@dataclass(frozen=True)
class RegistryVersion:
    """The model version the registry says to serve, and how it was chosen."""

    name: str
    version: str
    source: str
    """Artifact URI of the model package (`model.onnx` + `manifest.json`)."""
    sha256_tag: str | None
    """The `manifest.onnx_sha256` version tag, if the version has one."""
    selected_by: str
    """`alias production`, `alias challenger` or `stage Production`."""


def configure_mlflow_http(timeout: float) -> None:
    """Set MLflow's client HTTP policy, which it reads process-wide from the environment.

    MLflow retries a failed request 7 times with exponential backoff by default (minutes per
    call while the server is down); model-sync does its own retrying, so MLflow's is turned off.
    """
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, math.ceil(timeout)))
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"


def _is_not_found(exc: MlflowException) -> bool:
    """A registry answer meaning "no such model / alias", as opposed to a failure."""
    if not isinstance(exc, RestException):
        return False
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    # MLflow answers a missing alias with INVALID_PARAMETER_VALUE "... alias X not found."
    return exc.error_code == "INVALID_PARAMETER_VALUE" and "not found" in exc.message.lower()


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


class MlflowRegistry:
    """Reads the served version of registered models and downloads their packages."""

    def __init__(
        self, tracking_uri: str, *, alias: str = PRODUCTION, follow_legacy_stage: bool = False
    ) -> None:
        self.tracking_uri = tracking_uri
        self.alias = alias
        self.follow_legacy_stage = follow_legacy_stage
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def serving_version(self, name: str) -> RegistryVersion | None:
        """The version the alias (or, if asked, the legacy stage) names; None if neither is set."""
        found = self.aliased_version(name, self.alias)
        if found is not None or not self.follow_legacy_stage:
            return found
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated, we know
                in_stage = self.client.get_latest_versions(name, stages=[LEGACY_PRODUCTION_STAGE])
        except MlflowException as exc:
            if _is_not_found(exc):
                return None
            raise RegistryUnavailable(f"MLflow: {_describe(exc)}") from exc
        if not in_stage:
            return None
        latest = max(in_stage, key=lambda v: int(v.version))
        return self._version(latest, f"stage {LEGACY_PRODUCTION_STAGE}")

    def aliased_version(self, name: str, alias: str) -> RegistryVersion | None:
        """The version ``alias`` names; None if the alias (or the model) does not exist."""
        try:
            found = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if _is_not_found(exc):
                return None
            raise RegistryUnavailable(f"MLflow: {_describe(exc)}") from exc
        return self._version(found, f"alias {alias}")

    @staticmethod
    def _version(found, selected_by: str) -> RegistryVersion:
        return RegistryVersion(
            name=found.name,
            version=str(found.version),
            source=str(found.source).rstrip("/"),
            sha256_tag=(found.tags or {}).get(SHA256_TAG) or None,
            selected_by=selected_by,
        )

    def download(self, version: RegistryVersion, destination: Path) -> None:
        """Fetch the package's `model.onnx` and `manifest.json` into ``destination``."""
        destination.mkdir(parents=True, exist_ok=True)
        for filename in PACKAGE_FILES:
            try:
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{version.source}/{filename}",
                    dst_path=str(destination),
                    tracking_uri=self.tracking_uri,
                    registry_uri=self.tracking_uri,
                )
            except Exception as exc:  # artifact repositories raise many unrelated types
                raise RegistryUnavailable(
                    f"cannot download {filename} of {version.name} version {version.version}"
                    f" from {version.source}: {_describe(exc)}"
                ) from exc

    def ensure_webhook(self, name: str, url: str, secret: str) -> str:
        """Create the webhook, or update the one of that name; return its ID."""
        try:
            existing = [hook for hook in self._webhooks() if hook.name == name]
            if existing:
                hook = self.client.update_webhook(
                    existing[0].webhook_id,
                    url=url,
                    events=WEBHOOK_EVENTS,
                    secret=secret,
                    status="ACTIVE",
                )
            else:
                hook = self.client.create_webhook(
                    name=name,
                    url=url,
                    events=WEBHOOK_EVENTS,
                    secret=secret,
                    description="brainscan model-sync: alias changes of served models",
                )
        except RestException as exc:
            if 400 <= exc.get_http_status_code() < 500:
                raise WebhookUnsupported(f"MLflow refused the webhook: {_describe(exc)}") from exc
            raise RegistryUnavailable(f"MLflow: {_describe(exc)}") from exc
        except MlflowException as exc:
            raise RegistryUnavailable(f"MLflow: {_describe(exc)}") from exc
        return hook.webhook_id

    def _webhooks(self) -> list:
        hooks, token = [], None
        while True:
            page = self.client.list_webhooks(max_results=100, page_token=token)
            hooks.extend(page)
            token = page.token
            if not token:
                return hooks
