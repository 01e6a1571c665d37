"""Registering model versions in a real MLflow server the way the training pipeline does."""

from __future__ import annotations

from pathlib import Path

from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_manifest.registry_contract import CHALLENGER, PACKAGE_ARTIFACT_PATH, PRODUCTION
from brainscan_training.registry import Registry
from mlflow import MlflowClient


class RegistryHelper:
    """One registered model: register packages (checked or raw), move aliases, edit tags."""

    def __init__(self, tracking_uri: str, name: str) -> None:
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self.name = name
        self.registry = Registry(self.client, name)
        experiment = self.client.get_experiment_by_name("model-sync-tests")
        self.experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment("model-sync-tests")
        )

    def register(self, package: Path) -> str:
        """Register a valid package through the training side's registry code."""
        run = self.client.create_run(self.experiment_id)
        version = self.registry.register_package(package, run.info.run_id, {"origin": "test"})
        self.client.set_terminated(run.info.run_id)
        return version

    def register_raw(self, package: Path) -> str:
        """Register a package without any check (as a careless or hostile client could)."""
        self.registry.ensure_registered_model()
        run = self.client.create_run(self.experiment_id)
        for filename in (MODEL_FILE, MANIFEST_FILE):
            self.client.log_artifact(
                run.info.run_id, str(package / filename), PACKAGE_ARTIFACT_PATH
            )
        manifest = Manifest.load(package / MANIFEST_FILE)
        version = self.client.create_model_version(
            self.name,
            source=f"{run.info.artifact_uri}/{PACKAGE_ARTIFACT_PATH}",
            run_id=run.info.run_id,
            tags=manifest.to_tags(),
        )
        self.client.set_terminated(run.info.run_id)
        return str(version.version)

    def promote(self, version: str) -> None:
        self.client.set_registered_model_alias(self.name, PRODUCTION, version)

    def remove_production(self) -> None:
        self.client.delete_registered_model_alias(self.name, PRODUCTION)

    def challenge(self, version: str) -> None:
        self.client.set_registered_model_alias(self.name, CHALLENGER, version)

    def remove_challenger(self) -> None:
        self.client.delete_registered_model_alias(self.name, CHALLENGER)

    def set_tag(self, version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(self.name, version, key, value)
