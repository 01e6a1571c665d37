"""The MLflow side against a real server: alias, legacy stage, download, outage, webhook."""

from __future__ import annotations

import time
import warnings

import pytest
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE
from brainscan_modelsync.mlflow_registry import (
    MlflowRegistry,
    RegistryUnavailable,
    WebhookUnsupported,
)
from brainscan_modelsync.verifier import verify_version
from modelsync_packages import good_package
from modelsync_servers import dead_url

pytestmark = pytest.mark.usefixtures("mlflow_client_without_retries")


def test_the_alias_names_the_version_with_its_source_and_hash_tag(registry, tmp_path) -> None:
    package = good_package(tmp_path / "v1", registry.name)
    version = registry.register(package)
    registry.promote(version)
    found = MlflowRegistry(registry.client.tracking_uri).serving_version(registry.name)
    assert found.version == version and found.selected_by == "alias production"
    assert (
        found.sha256_tag
        == verify_version(
            package, model_name=registry.name, version=version, sha256_tag=found.sha256_tag
        ).sha256
    )
    assert found.source.endswith("/model_package")


def test_no_alias_or_no_model_is_none_not_an_error(registry, tmp_path) -> None:
    mlflow = MlflowRegistry(registry.client.tracking_uri)
    assert mlflow.serving_version(registry.name) is None  # no such registered model
    registry.register(good_package(tmp_path / "v1", registry.name))
    assert mlflow.serving_version(registry.name) is None  # model, but no alias


def test_the_legacy_production_stage_is_followed_only_when_asked(registry, tmp_path) -> None:
    version = registry.register(good_package(tmp_path / "v1", registry.name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        registry.client.transition_model_version_stage(registry.name, version, "Production")
    uri = registry.client.tracking_uri
    assert MlflowRegistry(uri).serving_version(registry.name) is None
    found = MlflowRegistry(uri, follow_legacy_stage=True).serving_version(registry.name)
    assert found.version == version and found.selected_by == "stage Production"
    # The alias wins over the stage when both are set.
    other = registry.register(good_package(tmp_path / "v2", registry.name))
    registry.promote(other)
    assert MlflowRegistry(uri, follow_legacy_stage=True).serving_version(registry.name).version == (
        other
    )


def test_download_fetches_the_package_files(registry, tmp_path) -> None:
    package = good_package(tmp_path / "v1", registry.name)
    registry.promote(registry.register(package))
    mlflow = MlflowRegistry(registry.client.tracking_uri)
    found = mlflow.serving_version(registry.name)
    mlflow.download(found, tmp_path / "download")
    for filename in (MODEL_FILE, MANIFEST_FILE):
        assert (tmp_path / "download" / filename).read_bytes() == (package / filename).read_bytes()


def test_an_unreachable_server_is_registry_unavailable_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="MLflow"):
        MlflowRegistry(dead_url()).serving_version("any")
    # MLflow's own client would retry for minutes; model-sync turns that off and retries itself.
    assert time.monotonic() - started < 30


def test_the_webhook_is_created_once_then_updated(mlflow_server, model_name) -> None:
    mlflow = MlflowRegistry(mlflow_server.url)
    name = f"model-sync-{model_name}"
    first = mlflow.ensure_webhook(name, "http://127.0.0.1:9/hook", "s" * 20)
    second = mlflow.ensure_webhook(name, "http://127.0.0.1:10/hook", "t" * 20)
    hooks = [h for h in mlflow.client.list_webhooks(max_results=1000) if h.name == name]
    assert first == second and len(hooks) == 1
    assert hooks[0].url == "http://127.0.0.1:10/hook"
    assert sorted(str(e) for e in hooks[0].events) == [
        "model_version_alias.created",
        "model_version_alias.deleted",
    ]
    mlflow.client.delete_webhook(first)


def test_a_webhook_the_server_refuses_is_unsupported(mlflow_server, model_name) -> None:
    with pytest.raises(WebhookUnsupported, match="refused the webhook"):
        MlflowRegistry(mlflow_server.url).ensure_webhook(
            f"model-sync-{model_name}", "ftp://127.0.0.1/hook", "s" * 20
        )
    with pytest.raises(RegistryUnavailable):
        MlflowRegistry(dead_url()).ensure_webhook("x", "http://127.0.0.1:9/hook", "s" * 20)
