"""Every error model-sync answers with: a stable code, an HTTP status and a message in words."""

from __future__ import annotations

from enum import StrEnum

from brainscan_servicekit.errors import ServiceError


class ErrorCode(StrEnum):
    """The ``error.code`` values; docs/model-sync.md lists each with its status and meaning."""

    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    MODEL_NOT_FOLLOWED = "model_not_followed"
    MODEL_NOT_AVAILABLE = "model_not_available"
    VERSION_NOT_FOUND = "version_not_found"
    NO_CHALLENGER = "no_challenger"
    WEBHOOKS_DISABLED = "webhooks_disabled"
    WEBHOOK_SIGNATURE = "webhook_signature"
    WEBHOOK_PAYLOAD = "webhook_payload"
    INTERNAL_ERROR = "internal_error"


class ModelSyncError(ServiceError):
    """An expected failure that becomes a JSON error response."""

    code: ErrorCode

    def __init__(
        self, code: ErrorCode, message: str, status: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(code, message, status, headers)
