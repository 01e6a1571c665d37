"""Dependencies the routes take, as ``Annotated`` aliases resolved from the app's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..errors import ErrorCode, ModelSyncError
from ..metrics import ModelSyncMetrics
from ..publication import Publication
from ..settings import ModelSyncSettings
from ..syncer import ModelSyncer
from ..webhook_registration import WebhookRegistration
from ..webhook_signature import WebhookVerifier


def _settings(request: Request) -> ModelSyncSettings:
    return request.app.state.settings


def _syncer(request: Request) -> ModelSyncer:
    return request.app.state.syncer


def _webhook(request: Request) -> WebhookRegistration:
    return request.app.state.webhook


def _metrics(request: Request) -> ModelSyncMetrics:
    return request.app.state.metrics


def _verifier(request: Request) -> WebhookVerifier | None:
    return request.app.state.webhook_verifier


def _publication(name: str, request: Request) -> Publication:
    publications: dict[str, Publication] = request.app.state.syncer.publications
    publication = publications.get(name)
    if publication is None:
        followed = ", ".join(sorted(publications))
        raise ModelSyncError(
            ErrorCode.MODEL_NOT_FOLLOWED,
            f"model-sync does not follow a model named {name!r}; it follows: {followed}",
            404,
        )
    return publication


SettingsDep = Annotated[ModelSyncSettings, Depends(_settings)]
SyncerDep = Annotated[ModelSyncer, Depends(_syncer)]
WebhookDep = Annotated[WebhookRegistration, Depends(_webhook)]
MetricsDep = Annotated[ModelSyncMetrics, Depends(_metrics)]
VerifierDep = Annotated[WebhookVerifier | None, Depends(_verifier)]
PublicationDep = Annotated[Publication, Depends(_publication)]
