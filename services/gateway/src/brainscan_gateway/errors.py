"""Every error the gateway answers with: a stable code, an HTTP status and a message in words.

Clients branch on ``code`` (stable), people read ``message``. Messages never quote the upload's
content or any DICOM header value, so nothing that identifies a patient can leak through them.
"""

from __future__ import annotations

from enum import StrEnum

from brainscan_servicekit.errors import ServiceError


class ErrorCode(StrEnum):
    """The ``error.code`` values; docs/gateway.md lists each with its status and meaning."""

    # The request itself
    MISSING_FILE = "missing_file"
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UPLOAD_TOO_LARGE = "upload_too_large"
    # The uploaded file
    EMPTY_FILE = "empty_file"
    UNSUPPORTED_FORMAT = "unsupported_format"
    CORRUPT_IMAGE = "corrupt_image"
    TOO_MANY_PIXELS = "too_many_pixels"
    IMAGE_TOO_SMALL = "image_too_small"
    DICOM_NO_PIXEL_DATA = "dicom_no_pixel_data"
    FRAME_OUT_OF_RANGE = "frame_out_of_range"
    DICOM_UNSUPPORTED = "dicom_unsupported"
    # A DICOM SR result asked for (results/dicom_sr.py)
    SR_NEEDS_DICOM = "sr_needs_dicom"
    DICOM_SOURCE_INCOMPLETE = "dicom_source_incomplete"
    # The STOW-RS receiver (dicomweb/)
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    MALFORMED_MULTIPART = "malformed_multipart"
    TOO_MANY_INSTANCES = "too_many_instances"
    # Access control
    API_KEY_MISSING = "api_key_missing"
    API_KEY_INVALID = "api_key_invalid"
    RATE_LIMITED = "rate_limited"
    # The inference service behind
    MODEL_NOT_READY = "model_not_ready"
    INFERENCE_UNAVAILABLE = "inference_unavailable"
    INFERENCE_TIMEOUT = "inference_timeout"
    INFERENCE_ERROR = "inference_error"
    EXPLANATION_UNAVAILABLE = "explanation_unavailable"
    # Reviewers' feedback
    FEEDBACK_DISABLED = "feedback_disabled"
    PREDICTION_UNKNOWN = "prediction_unknown"
    PREDICTION_EXPIRED = "prediction_expired"
    FEEDBACK_EXISTS = "feedback_exists"
    UNKNOWN_LABEL = "unknown_label"
    FEEDBACK_NOT_STORED = "feedback_not_stored"
    # A bug of ours
    INTERNAL_ERROR = "internal_error"


class GatewayError(ServiceError):
    """An expected failure that becomes a JSON error response."""

    code: ErrorCode

    def __init__(
        self, code: ErrorCode, message: str, status: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(code, message, status, headers)


class BadUpload(GatewayError):
    """The uploaded file cannot be classified; the message says why and what would work."""

    def __init__(self, code: ErrorCode, message: str, status: int = 422) -> None:
        super().__init__(code, message, status)
