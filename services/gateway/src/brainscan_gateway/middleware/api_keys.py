"""Optional API keys in the ``X-API-Key`` header; with no keys configured the API is open."""

from __future__ import annotations

import hashlib
import hmac

from ..errors import ErrorCode, GatewayError

API_KEY_HEADER = "X-API-Key"


class ApiKeyChecker:
    """Checks a presented key against the configured ones without leaking which is close."""

    def __init__(self, keys: frozenset[str]) -> None:
        self._digests = [hashlib.sha256(key.encode()).digest() for key in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def client_id(self, presented: str | None) -> str | None:
        """The client's identity (a key fingerprint), None when keys are off; 401 if refused."""
        if not self.enabled:
            return None
        if not presented:
            raise GatewayError(
                ErrorCode.API_KEY_MISSING,
                f"this API needs a key: send it in the {API_KEY_HEADER} header",
                401,
                headers={"WWW-Authenticate": "ApiKey"},
            )
        digest = hashlib.sha256(presented.encode()).digest()
        # Compare against every key, so the time taken does not tell which one nearly matched.
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(digest, known)
        if not matched:
            raise GatewayError(
                ErrorCode.API_KEY_INVALID,
                f"the key in the {API_KEY_HEADER} header is not valid",
                401,
                headers={"WWW-Authenticate": "ApiKey"},
            )
        return "key:" + digest.hex()[:16]
