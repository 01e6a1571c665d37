"""Render the brainscan chart with Helm's own engine and validate what it renders.

Shared by the chart tests and the Ansible tests (which render the values file the role writes).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import kubernetes_validate.utils
import yaml

CHART_DIR = Path(__file__).resolve().parents[1] / "brainscan"
SCENARIO_DIR = CHART_DIR / "ci"
# The Kubernetes versions the chart supports (Chart.yaml kubeVersion >= 1.29).
KUBE_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33", "1.34")
RELEASE = "brainscan"

# kubernetes-validate re-reads and re-parses its 1.3 MB definitions file on every call; the files
# never change, so read each once (the validation itself is untouched).
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)
NAMESPACE = "brainscan"
# Custom resources of the Prometheus operator the chart can render (monitoring.*). Their CRDs are
# not Kubernetes' own, so kubernetes-validate has no schema for them: validation_errors leaves
# them out, and test_chart_monitoring checks their structure against the CRDs' instead.
OPERATOR_KINDS = {
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}


@dataclass(frozen=True)
class RenderedRelease:
    """The objects and NOTES.txt a `helm install` would produce."""

    objects: list[dict[str, Any]]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        raise KeyError(f"no {kind} named {name!r} in the release")

    def names(self, kind: str) -> set[str]:
        return {obj["metadata"]["name"] for obj in self.of_kind(kind)}

    def deployment(self, component: str) -> dict[str, Any]:
        return self.get("Deployment", f"{RELEASE}-{component}")


def load_values(path: Path) -> dict[str, Any]:
    """A values file as Helm reads it (an empty file is no values)."""
    return yaml.safe_load(path.read_text()) or {}


def scenario_files() -> list[Path]:
    """The chart's values matrix: every `ci/*-values.yaml` (chart-testing's convention)."""
    return sorted(SCENARIO_DIR.glob("*-values.yaml"))


def scenarios() -> dict[str, Path | None]:
    """Scenario name -> values file; "defaults" renders the chart's own values."""
    named = {path.name.removesuffix("-values.yaml"): path for path in scenario_files()}
    return {"defaults": None} | named


def merge_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of two `-f` files: maps merge key by key and the later file wins (a null is
    kept, so that Helm removes the chart's default as it would)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def render(
    values: dict[str, Any] | None = None,
    *,
    chart_dir: Path = CHART_DIR,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> RenderedRelease:
    """What `helm install --dry-run=client` renders (schema checked, NOTES.txt included)."""
    with helm.Config(namespace=namespace, storage_driver="memory") as config:
        result = config.install(
            str(chart_dir), release, values or {}, namespace=namespace, dry_run="client"
        )
    objects = [doc for doc in yaml.safe_load_all(result["manifest"]) if doc]
    return RenderedRelease(objects=objects, notes=result["notes"])


def validation_errors(
    objects: list[dict[str, Any]], versions: tuple[str, ...] = KUBE_VERSIONS
) -> list[str]:
    """Every object checked in strict mode (unknown fields are errors) against each version;
    the Prometheus operator's custom resources (OPERATOR_KINDS) are not Kubernetes' to check."""
    errors = []
    seen = set()
    for obj in objects:
        if (obj.get("apiVersion"), obj.get("kind")) in OPERATOR_KINDS:
            continue
        key = json.dumps(obj, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(part) for part in error.path)
                errors.append(f"{name} on Kubernetes {version}: {path}: {error.message}")
            except (
                kubernetes_validate.SchemaNotFoundError,
                kubernetes_validate.utils.VersionNotSupportedError,
                kubernetes_validate.InvalidSchemaError,
            ) as error:
                errors.append(f"{name} on Kubernetes {version}: {error.message}")
    return errors
