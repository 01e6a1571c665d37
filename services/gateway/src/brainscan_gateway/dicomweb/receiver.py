"""The STOW-RS receiver: which received instances are classified, their SRs, where they go.

Each part of a request is one DICOM instance. An instance is **classified** when it is an MR
image (Modality MR) whose SeriesDescription matches ``GATEWAY_DICOMWEB_SERIES_PATTERN`` (and,
for ``/studies/{study}``, belongs to that study); anything else is **skipped**, saying why. A
classified instance goes through the upload route's own SR path (``dicom_sr.predict_sr``: the
same predictor, the middle frame of a multi-frame file), and the SRs of a request are stored in
one STOW-RS request at the push server. An instance that cannot be classified, or whose SR the
push server did not store, **failed**, with a PS3.18 FailureReason and the reason in words.

Nothing is kept: the instances and SRs live in memory for the request. Reasons are fixed texts
of the gateway's (and the predictor's error messages, which quote no header value), the one
value taken from a header into a reason is a Modality made of the letters a Modality has.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass, replace
from enum import StrEnum

import pydicom
from anyio import to_thread
from brainscan_servicekit import get_logger
from pydicom.dataset import Dataset

from ..errors import BadUpload, ErrorCode
from ..imaging.upload_format import describe
from ..prediction.predictor import Predictor
from ..results import dicom_sr
from .multipart import DICOM, Part, unsupported_media_type
from .push import StowClient

_log = get_logger("brainscan.dicomweb")

# PS3.18 / PS3.4 status codes for a FailedSOPSequence item's FailureReason (0008,1197).
PROCESSING_FAILURE = 0x0110
"""The SR of an instance that was classified could not be stored at the push server."""
CANNOT_UNDERSTAND = 0xC000
"""The instance cannot be read, or the gateway cannot classify it (the reason says why)."""
OTHER_STUDY = 0xA900
"""``/studies/{study}``: the instance belongs to another study than the request names."""

_MODALITY_VALUE = re.compile(r"[A-Z0-9_ ]{1,16}")


class Status(StrEnum):
    CLASSIFIED = "CLASSIFIED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class InstanceOutcome:
    """What became of one received instance (the part numbered ``part``, from 1)."""

    part: int
    sop_class_uid: str
    sop_instance_uid: str
    status: Status
    reason: str
    failure_reason: int | None = None
    sr_instance_uid: str | None = None


@dataclass(frozen=True)
class SelectionRule:
    """Which received instances are classified."""

    series_pattern: re.Pattern[str]

    def why_skipped(self, header: Dataset) -> str | None:
        """None when ``header`` is classified; else why not, in words."""
        modality = str(header.get("Modality", "") or "").strip().upper()
        if modality != "MR":
            named = (
                f"its Modality is {modality}"
                if _MODALITY_VALUE.fullmatch(modality)
                else ("it has no Modality" if not modality else "its Modality is not MR")
            )
            return f"skipped: {named}; only MR images (Modality MR) are classified"
        description = str(header.get("SeriesDescription", "") or "")
        if not self.series_pattern.search(description):
            return (
                "skipped: its SeriesDescription does not match the series rule of this gateway "
                "(GATEWAY_DICOMWEB_SERIES_PATTERN)"
            )
        return None


class Receiver:
    """Classifies the instances of a STOW-RS request and pushes their SRs."""

    def __init__(
        self,
        predictor: Predictor,
        pusher: StowClient,
        rule: SelectionRule,
        series_description: str,
    ) -> None:
        self.predictor = predictor
        self.pusher = pusher
        self.rule = rule
        self.series_description = series_description

    async def receive(
        self, parts: list[Part], study: str | None, request_id: str
    ) -> list[InstanceOutcome]:
        started = time.perf_counter()
        check_parts(parts)
        outcomes: list[InstanceOutcome] = []
        srs: dict[str, bytes] = {}
        for number, part in enumerate(parts, start=1):
            outcome, sr = await self._one(number, part.content, study, request_id)
            outcomes.append(outcome)
            if sr is not None:
                srs[sr.sop_instance_uid] = sr.body
        pushed = await self.pusher.store(srs)
        outcomes = [_after_push(outcome, pushed.failed) for outcome in outcomes]
        counts = {status: 0 for status in Status}
        for outcome in outcomes:
            counts[outcome.status] += 1
        # Counts only: no UID, no header value, no finding.
        _log.info(
            "dicomweb stow",
            **{
                "event.action": "dicomweb_stow",
                "event.duration": int((time.perf_counter() - started) * 1e9),
                "dicomweb.instances": len(outcomes),
                "dicomweb.classified": counts[Status.CLASSIFIED],
                "dicomweb.skipped": counts[Status.SKIPPED],
                "dicomweb.failed": counts[Status.FAILED],
                "dicomweb.pushed": len(srs) - len(pushed.failed),
                "dicomweb.push_status": pushed.status,
            },
        )
        return outcomes

    async def _one(
        self, number: int, data: bytes, study: str | None, request_id: str
    ) -> tuple[InstanceOutcome, dicom_sr.SrResult | None]:
        try:
            header = await to_thread.run_sync(_header, data)
        except Exception:  # pydicom raises many types for damaged files
            reason = f"part {number} cannot be read as DICOM: it is truncated or damaged"
            return InstanceOutcome(number, "", "", Status.FAILED, reason, CANNOT_UNDERSTAND), None
        sop_class = str(header.get("SOPClassUID", "") or "")
        sop_instance = str(header.get("SOPInstanceUID", "") or "")

        def outcome(status: Status, reason: str, code: int | None = None) -> InstanceOutcome:
            return InstanceOutcome(number, sop_class, sop_instance, status, reason, code)

        if not sop_class or not sop_instance:  # pydicom reads a damaged header as far as it can
            return outcome(
                Status.FAILED,
                f"part {number} has no SOPClassUID or SOPInstanceUID: it is truncated, damaged or "
                "not a DICOM instance",
                CANNOT_UNDERSTAND,
            ), None

        if study is not None and str(header.get("StudyInstanceUID", "")) != study:
            return outcome(
                Status.FAILED,
                "not stored: it belongs to another study than the one the request names",
                OTHER_STUDY,
            ), None
        skipped = self.rule.why_skipped(header)
        if skipped is not None:
            return outcome(Status.SKIPPED, skipped), None
        try:
            source = dicom_sr.source_of(header)
        except BadUpload as error:
            missing = error.message.split(":", 1)[0].removeprefix("the DICOM file has no ")
            return outcome(
                Status.FAILED,
                f"not classified: it has no {missing}, which the SR needs to refer to it",
                CANNOT_UNDERSTAND,
            ), None
        try:
            sr = await dicom_sr.predict_sr(
                self.predictor, data, source, None, request_id, self.series_description
            )
        except BadUpload as error:  # the image cannot be classified; inference errors propagate
            return outcome(
                Status.FAILED, f"not classified ({error.code}): {error.message}", CANNOT_UNDERSTAND
            ), None
        prediction = sr.prediction
        classified = InstanceOutcome(
            number,
            sop_class,
            sop_instance,
            Status.CLASSIFIED,
            f"classified as {prediction.label} (probability {prediction.confidence:.3f}"
            f"{', uncertain' if prediction.uncertain else ''}) by {prediction.model_name} "
            f"version {prediction.model_version}; the SR is stored at the push server",
            sr_instance_uid=sr.sop_instance_uid,
        )
        return classified, sr


def check_parts(parts: list[Part]) -> None:
    """Every part must be a DICOM instance, by its Content-Type and by its content: else a 415
    naming the part, before anything is classified."""
    for number, part in enumerate(parts, start=1):
        if part.content_type not in ("", DICOM):
            raise unsupported_media_type(
                f"part {number} is {part.content_type}, not {DICOM}: each part must be one "
                "DICOM instance (a Part 10 file)"
            )
        what = describe(part.content[:512])
        if what != "a DICOM file":
            raise BadUpload(
                ErrorCode.UNSUPPORTED_FORMAT,
                f"part {number} is {what}, not a DICOM instance (a Part 10 file, with DICM at "
                "byte 128): each part must be one",
                status=415,
            )


def _header(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)


def _after_push(outcome: InstanceOutcome, failed: dict[str, str]) -> InstanceOutcome:
    uid = outcome.sr_instance_uid
    if uid is None or uid not in failed:
        return outcome
    reason = outcome.reason.split(";", 1)[0] + f"; its SR was not stored: {failed[uid]}"
    return replace(
        outcome,
        status=Status.FAILED,
        reason=reason,
        failure_reason=PROCESSING_FAILURE,
        sr_instance_uid=None,
    )
