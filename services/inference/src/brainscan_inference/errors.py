"""Errors the service answers with, each carrying its HTTP status and a stable code.

Raised anywhere below the HTTP layer; ``api.errors`` turns them into the protocol's
``{"error": "<message>"}`` body (plus ``code`` and ``request_id``).
"""

from __future__ import annotations


class InferenceError(Exception):
    """Base: a request that cannot be answered with a result."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(InferenceError):
    """The client's request is wrong; the message says what to change."""

    status = 400
    code = "bad_request"


class Unauthorized(InferenceError):
    """The caller did not present the credentials this endpoint requires."""

    status = 401
    code = "unauthorized"


class PayloadTooLarge(InferenceError):
    status = 413
    code = "payload_too_large"


class ModelNotFound(InferenceError):
    """No such model name or version is served here."""

    status = 404
    code = "model_not_found"


class Unavailable(InferenceError):
    """Temporarily unable to answer (no model loaded yet, queue full); retry later."""

    status = 503
    code = "unavailable"


class ActivationMapFailed(InferenceError):
    """The served model's feature map and CAM weights do not fit: a broken package, not a bad
    request. Warm-up refuses such packages, so this guards only against what it cannot see."""

    status = 500
    code = "activation_map_failed"
