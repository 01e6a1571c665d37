"""Keeps the model slot on the source's current model: follows changes, reloads on demand."""

from __future__ import annotations

import asyncio
import contextlib

from brainscan_servicekit import get_logger

from .model_slot import LoadOutcome, ModelSlot
from .sources import ModelSource, SourceError

_log = get_logger(__name__)


class ModelUpdater:
    """Runs ``slot.load`` for every package the source offers, in a background task."""

    def __init__(self, source: ModelSource, slot: ModelSlot) -> None:
        self.source = source
        self.slot = slot
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="model-updater")

    async def _follow(self) -> None:
        while True:
            try:
                async for candidate in self.source.changes():
                    if candidate is None:
                        await self.slot.unload()
                    else:
                        await self.slot.load(candidate)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken source must not stop the service; try again
                _log.exception(
                    "model source failed; retrying",
                    **{"brainscan.model_source": self.source.description},
                )
                await asyncio.sleep(5.0)

    async def load_now(self) -> LoadOutcome:
        """Ask the source for its current package and load it (the repository API's trigger)."""
        try:
            candidate = await self.source.latest()
        except SourceError as exc:
            return LoadOutcome("refused", "", str(exc), self.source.description)
        if candidate is None:
            return LoadOutcome(
                "refused", "", "the source offers no version", self.source.description
            )
        return await self.slot.load(candidate)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
