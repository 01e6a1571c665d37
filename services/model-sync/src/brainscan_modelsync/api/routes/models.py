"""The followed models: current version and challenger (long polls), version metadata, ONNX
artifact, history."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import FileResponse, JSONResponse

from ...errors import ErrorCode, ModelSyncError
from ...history import Trigger
from ...publication import Publication, PublishedVersion
from ...settings import ModelSyncSettings
from ..deps import MetricsDep, PublicationDep, SettingsDep, SyncerDep

router = APIRouter(prefix="/v1/models", tags=["models"])
_MANUAL_SYNC_TIMEOUT = 60.0


def _status(publication: Publication) -> str:
    return "degraded" if publication.degraded_reason else "ok"


def _artifact_url(name: str, version: str) -> str:
    return f"/v1/models/{quote(name, safe='')}/versions/{version}/artifact"


def _describe(publication: Publication, published: PublishedVersion) -> dict[str, object]:
    return {
        "name": published.name,
        "alias": publication.alias,
        "version": published.version,
        "sha256": published.sha256,
        "published_at": published.published_at,
        "selected_by": published.selected_by,
        "artifact_url": _artifact_url(published.name, published.version),
        "status": _status(publication),
        "degraded_reason": publication.degraded_reason,
        "manifest": published.manifest.model_dump(mode="json"),
    }


def _not_available(publication: Publication, retry_after: int) -> ModelSyncError:
    why = f": {publication.degraded_reason}" if publication.degraded_reason else ""
    return ModelSyncError(
        ErrorCode.MODEL_NOT_AVAILABLE,
        f"no verified version of {publication.name!r} to serve yet{why}",
        503,
        {"Retry-After": str(retry_after)},
    )


@router.get("")
async def list_models(syncer: SyncerDep) -> dict[str, object]:
    """Every followed model and the version served."""
    return {
        "models": [
            {
                "name": name,
                "version": publication.current.version if publication.current else None,
                "status": _status(publication),
            }
            for name, publication in syncer.publications.items()
        ]
    }


@dataclass
class LongPoll:
    """The long-poll query parameters both version resources take."""

    wait: Annotated[
        float,
        Query(ge=0, description="Long poll: seconds to wait for a version other than `known`."),
    ] = 0.0
    known: Annotated[
        str | None, Query(max_length=64, description="The version the caller already has.")
    ] = None

    async def answer(
        self, publication: Publication, settings: ModelSyncSettings
    ) -> PublishedVersion | None:
        """What ``publication`` offers: now, or once it differs from ``known`` (``wait``)."""
        wait = min(self.wait, settings.long_poll_max_wait)
        if wait <= 0:
            return publication.current
        return await publication.wait_for_change(self.known, wait)


LongPollDep = Annotated[LongPoll, Depends()]


@router.get("/{name}")
async def current_model(
    publication: PublicationDep, settings: SettingsDep, syncer: SyncerDep, poll: LongPollDep
) -> dict[str, object]:
    """The version to serve and its manifest; with `wait`, answers once it differs from `known`."""
    current = await poll.answer(publication, settings)
    if current is None:
        raise _not_available(publication, max(1, round(settings.retry_initial_delay)))
    shadow = syncer.challengers.get(publication.name)
    in_shadow = shadow.current if shadow is not None else None
    return {**_describe(publication, current), "challenger_version": _version_of(in_shadow)}


@router.get("/{name}/challenger")
async def challenger_model(
    publication: PublicationDep, settings: SettingsDep, syncer: SyncerDep, poll: LongPollDep
) -> dict[str, object]:
    """The version in shadow (never to answer with) and its manifest; 404 while there is none.
    With `wait`, answers once it differs from `known`, its withdrawal included."""
    shadow = syncer.challengers.get(publication.name)
    if shadow is None:
        raise ModelSyncError(
            ErrorCode.NO_CHALLENGER,
            "model-sync follows no challenger alias (MODELSYNC_CHALLENGER_ALIAS is empty)",
            404,
        )
    current = await poll.answer(shadow, settings)
    if current is None:
        raise ModelSyncError(
            ErrorCode.NO_CHALLENGER,
            f"no version of {shadow.name!r} is in shadow: the alias {shadow.alias!r} is not set,"
            " names a refused version, or names the version served (see the history)",
            404,
        )
    return _describe(shadow, current)


def _version_of(published: PublishedVersion | None) -> str | None:
    return published.version if published is not None else None


def _package(publication: Publication, version: str) -> tuple[Path, Manifest, bool]:
    """Folder, manifest and "is served" of the served version or another verified cached one."""
    current = publication.current
    if current is not None and current.version == version:
        return current.directory, current.manifest, True
    serving = f"; serving version {current.version}" if current else ""
    missing = ModelSyncError(
        ErrorCode.VERSION_NOT_FOUND,
        f"version {version!r} of {publication.name!r} is not available here (model-sync keeps"
        f" only verified versions, the most recent ones){serving}",
        404,
    )
    directory = publication.cache.find(publication.name, version)
    if directory is None:
        raise missing
    try:
        return directory, Manifest.load(directory / MANIFEST_FILE), False
    except (OSError, ValueError):
        raise missing from None


@router.get("/{name}/versions/{version}")
async def version_metadata(publication: PublicationDep, version: str) -> dict[str, object]:
    """Manifest and sha256 of a verified version (the served one or a cached one)."""
    _, manifest, served = _package(publication, version)
    return {
        "name": publication.name,
        "version": version,
        "sha256": manifest.onnx_sha256,
        "served": served,
        "artifact_url": _artifact_url(publication.name, version),
        "manifest": manifest.model_dump(mode="json"),
    }


def _etag_matches(if_none_match: str, sha256: str) -> bool:
    for candidate in if_none_match.split(","):
        tag = candidate.strip().removeprefix("W/").strip('"')
        if tag in ("*", sha256):
            return True
    return False


@router.api_route(
    "/{name}/versions/{version}/artifact",
    methods=["GET", "HEAD"],
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 304: {}},
)
async def artifact(
    publication: PublicationDep,
    version: str,
    metrics: MetricsDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The ONNX file of a verified version; ETag = its sha256 (304 on a matching If-None-Match)."""
    directory, manifest, _ = _package(publication, version)
    sha256 = manifest.onnx_sha256
    headers = {
        "ETag": f'"{sha256}"',
        "Cache-Control": "no-cache",
        "X-Model-Version": version,
    }
    if if_none_match is not None and _etag_matches(if_none_match, sha256):
        metrics.artifact_requests.labels(publication.name, "not_modified").inc()
        return Response(status_code=304, headers=headers)
    metrics.artifact_requests.labels(publication.name, "sent").inc()
    return FileResponse(
        directory / MODEL_FILE, media_type="application/octet-stream", headers=headers
    )


@router.get("/{name}/history")
async def history(
    publication: PublicationDep,
    syncer: SyncerDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, object]:
    """Every change of the served version and of the challenger, newest first: alias, version,
    time, trigger, outcome, why."""
    shadow = syncer.challengers.get(publication.name)
    entries = publication.history.newest_first(limit)
    if shadow is not None:
        entries += shadow.history.newest_first(limit)
        entries.sort(key=lambda entry: entry.at, reverse=True)
    return {
        "name": publication.name,
        "current_version": _version_of(publication.current),
        "challenger_version": _version_of(shadow.current if shadow is not None else None),
        "entries": [entry.to_dict() for entry in entries[:limit]],
    }


@router.post("/{name}/sync", responses={202: {"description": "The check is still running."}})
async def sync_now(publication: PublicationDep, syncer: SyncerDep) -> Response:
    """Check the registry for this model now (trigger `manual`) and say what came of it."""
    future = syncer.request_sync(publication.name, Trigger.MANUAL)
    try:
        result = await asyncio.wait_for(asyncio.shield(future), _MANUAL_SYNC_TIMEOUT)
    except TimeoutError:
        body = {
            "model": publication.name,
            "trigger": str(Trigger.MANUAL),
            "outcome": "running",
            "reason": f"still running after {_MANUAL_SYNC_TIMEOUT:.0f} s; see the history",
        }
        return JSONResponse(body, status_code=202)
    return JSONResponse(result.to_dict())
