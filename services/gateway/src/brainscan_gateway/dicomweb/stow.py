"""The STOW-RS answer (PS3.18 10.5.3): DICOM JSON (PS3.18 F) with the received instances in
ReferencedSOPSequence (stored here means accepted: classified or skipped) or FailedSOPSequence.

PS3.18 has no attribute for a reason in words, so each item also carries a private block
(creator ``BRAINSCAN`` at (0009,0010), PS3.5 7.8): (0009,1001) the status (CLASSIFIED, SKIPPED,
FAILED), (0009,1002) the reason, (0009,1003) the SR's SOP Instance UID, (0009,1004) the part
number. Standard clients ignore private elements.
"""

from __future__ import annotations

from typing import Any

from .receiver import InstanceOutcome, Status

REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_CLASS_UID = "00081150"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
PRIVATE_CREATOR = "00090010"
CREATOR = "BRAINSCAN"
STATUS = "00091001"
REASON = "00091002"
SR_INSTANCE_UID = "00091003"
PART = "00091004"


def _element(vr: str, value: object | None) -> dict[str, Any]:
    return {"vr": vr} if value in (None, "") else {"vr": vr, "Value": [value]}


def _item(outcome: InstanceOutcome) -> dict[str, Any]:
    item = {
        REFERENCED_SOP_CLASS_UID: _element("UI", outcome.sop_class_uid),
        REFERENCED_SOP_INSTANCE_UID: _element("UI", outcome.sop_instance_uid),
        PRIVATE_CREATOR: _element("LO", CREATOR),
        STATUS: _element("CS", outcome.status.value),
        REASON: _element("LT", outcome.reason),
        PART: _element("US", outcome.part),
    }
    if outcome.failure_reason is not None:
        item[FAILURE_REASON] = _element("US", outcome.failure_reason)
    if outcome.sr_instance_uid is not None:
        item[SR_INSTANCE_UID] = _element("UI", outcome.sr_instance_uid)
    return dict(sorted(item.items()))


def answer(outcomes: list[InstanceOutcome]) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body: 200 when nothing failed, 202 when some did, 409 when all did."""
    failed = [_item(o) for o in outcomes if o.status is Status.FAILED]
    referenced = [_item(o) for o in outcomes if o.status is not Status.FAILED]
    body: dict[str, Any] = {}
    if failed:
        body[FAILED_SOP_SEQUENCE] = {"vr": "SQ", "Value": failed}
    if referenced:
        body[REFERENCED_SOP_SEQUENCE] = {"vr": "SQ", "Value": referenced}
    status = 200 if not failed else 202 if referenced else 409
    return status, body
