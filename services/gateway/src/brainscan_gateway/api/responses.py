"""OpenAPI descriptions of the error responses each route can give."""

from __future__ import annotations

from typing import Any

from .schemas import ErrorResponse


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "API key missing or not valid (api_key_missing, api_key_invalid).",
        413: "Upload over the size limit (upload_too_large).",
        415: "Not a JPEG, PNG or DICOM, or a DICOM encoding not supported.",
        422: "Request or image cannot be used (see the error code).",
        429: "Rate limit exceeded (rate_limited); see Retry-After.",
        502: "Inference answered with an error (inference_error).",
        503: "Inference unavailable or no model yet; see Retry-After.",
        504: "Inference did not answer in time (inference_timeout).",
    }
    return {
        status: {"model": ErrorResponse, "description": descriptions.get(status, "Error.")}
        for status in statuses
    }
