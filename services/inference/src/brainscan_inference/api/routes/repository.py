"""Model repository extension (subset): what is loaded, and reload from the source now.

Off unless INFERENCE_REPOSITORY_API is set, and then only for callers presenting the shared
token: a load makes the service read its source and swap models, not something for anyone
who can reach the port.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, Request

from ...errors import BadRequest, ModelNotFound, Unauthorized
from ..deps import ModelSlotDep, SettingsDep, UpdaterDep


async def require_token(request: Request, settings: SettingsDep) -> None:
    """401 unless the request carries ``Authorization: Bearer <INFERENCE_REPOSITORY_TOKEN>``."""
    expected = settings.repository_token.get_secret_value() if settings.repository_token else ""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # compare_digest: the time taken must not tell how much of a guessed token was right.
    if not (
        expected
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented.strip().encode(), expected.encode())
    ):
        raise Unauthorized(
            "the repository API needs the service's token as 'Authorization: Bearer <token>'"
        )


router = APIRouter(tags=["repository"], dependencies=[Depends(require_token)])


@router.post("/v2/repository/index")
async def repository_index(slot: ModelSlotDep) -> list[dict[str, Any]]:
    """The model served, and the last package refused (with why) if that came after it."""
    entries = []
    model = slot.current
    if model is not None:
        entries.append(
            {"name": model.name, "version": model.version, "state": "READY", "reason": ""}
        )
    last = slot.last_outcome
    if last is not None and last.state == "refused":
        entries.append(
            {
                "name": model.name if model else "",
                "version": last.version,
                "state": "UNAVAILABLE",
                "reason": f"refused at {last.at}: {last.reason}",
            }
        )
    return entries


@router.post("/v2/repository/models/{name}/load")
async def repository_load(
    name: str, slot: ModelSlotDep, updater: UpdaterDep, settings: SettingsDep
) -> dict[str, Any]:
    """Look at the source now and load its current package; 400 with the reason if refused."""
    served = slot.current.name if slot.current else settings.model_name
    if served is not None and name != served:
        raise ModelNotFound(f"unknown model {name!r}; this service serves {served!r}")
    outcome = await updater.load_now()
    if outcome.state == "refused":
        instead = f"; serving version {outcome.fallback.version}" if outcome.fallback else ""
        raise BadRequest(
            f"model refused: version {outcome.version}: {outcome.reason}{instead}",
            code="model_refused",
        )
    return {"name": name, "version": outcome.version, "state": outcome.state}
