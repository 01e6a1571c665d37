"""Feedback on one answered prediction: check it, store the pixels and the record, count it.

Knows nothing of HTTP; the route hands it the request ID, the caller and the body.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from anyio import CapacityLimiter, to_thread
from brainscan_servicekit import get_logger

from ..errors import ErrorCode, GatewayError
from ..metrics import GatewayMetrics
from .store import FeedbackRecord, FeedbackStore, png_of_pixels
from .window import Answered, FeedbackWindow, Gone, NotHeld

_log = get_logger("brainscan.feedback")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class FeedbackDesk:
    """The window of predictions held for feedback, and the store feedback goes to."""

    def __init__(
        self,
        window: FeedbackWindow,
        store: FeedbackStore,
        metrics: GatewayMetrics,
        image_work_slots: CapacityLimiter,
    ) -> None:
        self.window = window
        self.store = store
        self.metrics = metrics
        self.image_work_slots = image_work_slots

    def hold(self, request_id: str, answered: Answered) -> None:
        self.window.hold(request_id, answered)

    async def give(
        self, request_id: str, client: str, label: str, comment: str | None
    ) -> FeedbackRecord:
        try:
            answered = self.window.peek(request_id, client)
        except NotHeld as missing:
            raise _not_held(missing.gone, self.window.window_seconds) from None
        if label not in answered.classes:
            raise GatewayError(
                ErrorCode.UNKNOWN_LABEL,
                f"'{label}' is not a class of model {answered.model_name}: use one of "
                + ", ".join(answered.classes),
                422,
            )
        self.window.claim(request_id, client)  # no await since peek: still held
        received = time.time()

        def record_for(sha256: str) -> FeedbackRecord:
            width, height = answered.image.size
            return FeedbackRecord(
                sha256=sha256,
                width=width,
                height=height,
                mode=answered.image.mode,
                request_id=request_id,
                model_name=answered.model_name,
                model_version=answered.model_version,
                model_role=answered.model_role,
                model_label=answered.label,
                model_confidence=answered.confidence,
                model_classes=answered.classes,
                assessed=answered.assessed,
                label=label,
                comment=comment,
                answered_at=_iso(answered.answered_at),
                received_at=_iso(received),
            )

        def store() -> FeedbackRecord:
            return self.store.save(png_of_pixels(answered.image), record_for)

        try:
            record = await to_thread.run_sync(store, limiter=self.image_work_slots)
        except OSError as error:
            self.window.release(request_id, answered)
            _log.error(
                "feedback not stored",
                **{"event.action": "feedback", "event.outcome": "failure",
                   "error.type": type(error).__name__},
            )  # fmt: skip
            raise GatewayError(
                ErrorCode.FEEDBACK_NOT_STORED,
                "the feedback could not be stored (the store is unavailable): try again later",
                503,
                headers={"Retry-After": "30"},
            ) from None
        outcome = "confirmation" if record.confirmation else "correction"
        version = answered.model_version or ""
        self.metrics.feedback.labels(version, answered.label, label, outcome).inc()
        # The comment is free text a reviewer may fill with a name or a date: it is stored with
        # the image (same protection) but never logged; the log says only whether there is one.
        _log.info(
            "feedback",
            **{
                "event.action": "feedback",
                "event.outcome": "success",
                "feedback.outcome": outcome,
                "feedback.label": label,
                "feedback.has_comment": bool(comment),
                "feedback.image_sha256": record.sha256,
                "feedback.age_s": round(received - answered.answered_at, 1),
                "prediction.label": answered.label,
                "prediction.confidence": round(answered.confidence, 4),
                "prediction.assessed": answered.assessed,
                "model.name": answered.model_name,
                "model.version": answered.model_version,
            },
        )
        return record


def _not_held(gone: Gone | None, window_seconds: float) -> GatewayError:
    minutes = f"{window_seconds / 60:g} min"
    if gone is Gone.GIVEN:
        return GatewayError(
            ErrorCode.FEEDBACK_EXISTS,
            "feedback was already given on this prediction: the first one stands",
            409,
        )
    if gone is not None:
        why = "it is older than the feedback window" if gone is Gone.EXPIRED else (
            "it was dropped to make room for newer predictions")  # fmt: skip
        return GatewayError(
            ErrorCode.PREDICTION_EXPIRED,
            f"this prediction is too old for feedback ({why}, {minutes}, and its image is no "
            "longer held): analyse the image again and give feedback on the new answer",
            410,
        )
    return GatewayError(
        ErrorCode.PREDICTION_UNKNOWN,
        "no prediction with this request ID is held for feedback: it is unknown, was made by "
        f"another client or on another gateway replica, or is older than the {minutes} window",
        404,
    )
