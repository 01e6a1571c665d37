"""Request dependencies: the app's settings, registry, metrics and updater from its state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..metrics import InferenceMetrics
from ..registry import ModelRegistry
from ..settings import InferenceSettings
from ..updater import ModelUpdater


async def get_settings(request: Request) -> InferenceSettings:
    return request.app.state.settings


async def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def get_metrics(request: Request) -> InferenceMetrics:
    return request.app.state.metrics


async def get_updater(request: Request) -> ModelUpdater:
    return request.app.state.updater


SettingsDep = Annotated[InferenceSettings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
MetricsDep = Annotated[InferenceMetrics, Depends(get_metrics)]
UpdaterDep = Annotated[ModelUpdater, Depends(get_updater)]
