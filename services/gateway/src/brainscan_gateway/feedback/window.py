"""The predictions that can still get feedback: their decoded pixels, in memory only, bounded.

After an answer the gateway holds the decoded 8-bit picture (grey or RGB: pixels only, no file,
no DICOM header) with the model's answer, keyed by request ID and bound to the client that asked.
Nothing is written anywhere unless feedback comes. An entry goes when feedback is given (its
pixels are dropped at once), when it is older than the window, or to make room (count and bytes
are both bounded). For a while afterwards only its request ID is remembered, so that late
feedback gets "too old" (410) rather than "unknown" (404).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image


class Gone(StrEnum):
    """Why a request ID is no longer held."""

    EXPIRED = "expired"
    """Older than the feedback window."""
    EVICTED = "evicted"
    """Dropped to make room for newer predictions."""
    GIVEN = "given"
    """Feedback was given on it already."""


@dataclass(frozen=True)
class Answered:
    """One answered prediction, as feedback needs it."""

    client: str
    """Who asked (API key fingerprint, else address): only they may give feedback on it."""
    image: Image.Image
    """The decoded picture the model saw (mode L or RGB, 8 bits per channel)."""
    model_name: str
    model_version: str | None
    model_role: str
    """production, or challenger for a canary answer."""
    label: str
    confidence: float
    classes: tuple[str, ...]
    assessed: bool
    answered_at: float
    """Wall-clock time of the answer (seconds since the epoch)."""

    @property
    def nbytes(self) -> int:
        width, height = self.image.size
        return width * height * len(self.image.getbands())


class NotHeld(Exception):
    """No prediction is held under this request ID; ``gone`` says why when it is known."""

    def __init__(self, gone: Gone | None) -> None:
        super().__init__(gone)
        self.gone = gone


class FeedbackWindow:
    """Answered predictions by request ID, oldest first, within count, bytes and time bounds."""

    def __init__(
        self,
        window_seconds: float,
        max_pending: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[int, int], None] | None = None,
    ) -> None:
        self.window_seconds = window_seconds
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self._clock = clock
        self._on_change = on_change
        self._held: OrderedDict[str, tuple[float, Answered]] = OrderedDict()
        self._gone: OrderedDict[str, Gone] = OrderedDict()
        self._max_gone = 4 * max_pending
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, request_id: str, answered: Answered) -> bool:
        """Hold ``answered`` for feedback; False when its image alone is over the byte bound."""
        self._expire()
        self._drop(request_id, None)  # a reused request ID replaces the older answer
        self._gone.pop(request_id, None)
        if answered.nbytes > self.max_bytes:
            self._changed()
            return False
        while self._held and (
            len(self._held) >= self.max_pending or self.nbytes + answered.nbytes > self.max_bytes
        ):
            self._drop(next(iter(self._held)), Gone.EVICTED)
        self._held[request_id] = (self._clock(), answered)
        self.nbytes += answered.nbytes
        self._changed()
        return True

    def peek(self, request_id: str, client: str) -> Answered:
        """The prediction held under ``request_id`` for ``client``, else NotHeld.

        A prediction held for another client is "unknown" to this one: request IDs may be sent
        by clients, so knowing one must not be enough to label someone else's image.
        """
        self._expire()
        entry = self._held.get(request_id)
        if entry is None or entry[1].client != client:
            raise NotHeld(self._gone.get(request_id) if entry is None else None)
        return entry[1]

    def claim(self, request_id: str, client: str) -> Answered:
        """Take the prediction out for feedback (a second claim finds it ``GIVEN``)."""
        answered = self.peek(request_id, client)
        self._drop(request_id, Gone.GIVEN)
        self._changed()
        return answered

    def release(self, request_id: str, answered: Answered) -> None:
        """Put back a claimed prediction whose feedback could not be stored (the reviewer may
        try again: it is held as if just answered)."""
        self.hold(request_id, answered)

    def _expire(self) -> None:
        deadline = self._clock() - self.window_seconds
        while self._held:
            request_id, (held_at, _) = next(iter(self._held.items()))
            if held_at > deadline:
                break
            self._drop(request_id, Gone.EXPIRED)

    def _drop(self, request_id: str, why: Gone | None) -> None:
        entry = self._held.pop(request_id, None)
        if entry is not None:
            self.nbytes -= entry[1].nbytes
        if why is not None:
            self._gone[request_id] = why
            self._gone.move_to_end(request_id)
            while len(self._gone) > self._max_gone:
                self._gone.popitem(last=False)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(len(self._held), self.nbytes)
