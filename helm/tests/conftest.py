"""Fixtures of the chart tests: the values matrix rendered once, and what the services serve."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

# The helper module lives beside this file; pytest's importlib mode does not put it on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import k8s_render

SCENARIOS = k8s_render.scenarios()


@pytest.fixture(scope="session")
def scenario_values() -> dict[str, dict[str, Any]]:
    """Each scenario's values as given to Helm (defaults: none)."""
    return {
        name: ({} if path is None else k8s_render.load_values(path))
        for name, path in SCENARIOS.items()
    }


@pytest.fixture(scope="session")
def releases(scenario_values) -> dict[str, k8s_render.RenderedRelease]:
    """Every scenario rendered with Helm's engine, once per session."""
    return {name: k8s_render.render(values) for name, values in scenario_values.items()}


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request, releases, scenario_values):
    """One scenario: its name, values and rendered release."""
    name = request.param
    return name, scenario_values[name], releases[name]


def _openapi_get_paths(app) -> set[str]:
    with warnings.catch_warnings():
        # FastAPI warns about duplicate operation IDs of HEAD+GET routes; irrelevant here.
        warnings.simplefilter("ignore")
        paths = app.openapi()["paths"]
    return {path for path, methods in paths.items() if "get" in methods}


@pytest.fixture(scope="session")
def served_get_paths() -> dict[str, set[str]]:
    """GET paths each component really serves, read from the services' own apps."""
    with warnings.catch_warnings():
        # MLflow's server imports warn about SQLAlchemy deprecations: not ours to fix.
        warnings.simplefilter("ignore")
        from brainscan_gateway.app import create_app as gateway_app
        from brainscan_gateway.settings import GatewaySettings
        from brainscan_inference.app import create_app as inference_app
        from brainscan_inference.settings import InferenceSettings
        from brainscan_modelsync.app import create_app as modelsync_app
        from brainscan_modelsync.settings import ModelSyncSettings
        from mlflow.server import app as mlflow_app

    return {
        "gateway": _openapi_get_paths(gateway_app(GatewaySettings())),
        "inference": _openapi_get_paths(inference_app(InferenceSettings())),
        "model-sync": _openapi_get_paths(modelsync_app(ModelSyncSettings())),
        "mlflow": {rule.rule for rule in mlflow_app.url_map.iter_rules() if "GET" in rule.methods},
    }
