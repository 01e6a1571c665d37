"""Request dependencies: the app's settings, slot, metrics and updater from its state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..metrics import InferenceMetrics
from ..model_slot import ModelSlot
from ..settings import InferenceSettings
from ..updater import ModelUpdater


async def get_settings(request: Request) -> InferenceSettings:
    return request.app.state.settings


async def get_model_slot(request: Request) -> ModelSlot:
    return request.app.state.model_slot


async def get_metrics(request: Request) -> InferenceMetrics:
    return request.app.state.metrics


async def get_updater(request: Request) -> ModelUpdater:
    return request.app.state.updater


SettingsDep = Annotated[InferenceSettings, Depends(get_settings)]
ModelSlotDep = Annotated[ModelSlot, Depends(get_model_slot)]
MetricsDep = Annotated[InferenceMetrics, Depends(get_metrics)]
UpdaterDep = Annotated[ModelUpdater, Depends(get_updater)]
