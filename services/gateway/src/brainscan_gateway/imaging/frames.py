"""Which frame of a multi-frame image is classified: the rule, without pydicom.

DICOM numbers frames from 1, and so do the ``frame`` parameter and the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadUpload, ErrorCode


@dataclass(frozen=True)
class FrameChoice:
    """The frame of a multi-frame DICOM that was classified, numbered from 1 as DICOM does."""

    index: int
    count: int


def choose_frame(count: int, requested: int | None) -> int:
    """The 1-based frame to classify: ``requested``, else the middle one, (count + 1) // 2.

    For an even count that is the lower of the two middle frames (4 frames: frame 2).
    """
    if requested is None:
        return (count + 1) // 2
    if not 1 <= requested <= count:
        held = "1 frame (frame 1)" if count == 1 else f"{count} frames (numbered 1 to {count})"
        raise BadUpload(
            ErrorCode.FRAME_OUT_OF_RANGE,
            f"frame {requested} was asked for, but the DICOM file holds {held}: ask for a "
            "frame in that range, or leave frame out to classify the middle one",
        )
    return requested
