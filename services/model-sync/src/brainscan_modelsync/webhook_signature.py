"""Checks that a webhook really comes from MLflow, now, and only once.

MLflow (3.3+) signs each delivery the Standard Webhooks way: ``X-MLflow-Signature: v1,<base64
HMAC-SHA256 of "<delivery id>.<timestamp>.<raw body>">`` with the webhook's secret, plus
``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp`` (Unix seconds). A timestamp outside the
tolerance is stale; a delivery ID seen within the tolerance window is a replay.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Mapping

SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_ID_HEADER = "x-mlflow-delivery-id"
SIGNATURE_VERSION = "v1"
_MAX_DELIVERY_ID = 200


class WebhookRejected(ValueError):
    """The delivery must not be acted on; the message says why (without any secret)."""


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The header value MLflow sends for this delivery (used by tests and tooling)."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


class WebhookVerifier:
    """Verifies signature and freshness, and remembers recent delivery IDs to refuse replays."""

    def __init__(self, secret: str, tolerance_seconds: int, max_remembered: int = 10_000) -> None:
        self._secret = secret
        self.tolerance = tolerance_seconds
        self._max_remembered = max_remembered
        self._seen: OrderedDict[str, float] = OrderedDict()  # delivery ID -> its timestamp

    def verify(self, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str:
        """Return the delivery ID of an authentic, fresh, first-seen delivery; else raise."""
        now = time.time() if now is None else now
        signature = headers.get(SIGNATURE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        delivery_id = headers.get(DELIVERY_ID_HEADER)
        if not signature:
            raise WebhookRejected(f"missing {SIGNATURE_HEADER} header")
        if not timestamp or not delivery_id:
            raise WebhookRejected(f"missing {TIMESTAMP_HEADER} or {DELIVERY_ID_HEADER} header")
        if len(delivery_id) > _MAX_DELIVERY_ID:
            raise WebhookRejected("delivery ID too long")
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise WebhookRejected(f"{TIMESTAMP_HEADER} is not a Unix time in seconds") from None
        if abs(now - sent_at) > self.tolerance:
            raise WebhookRejected(
                f"stale timestamp: {now - sent_at:+.0f} s from this clock"
                f" (tolerance {self.tolerance} s)"
            )
        expected = sign(self._secret, delivery_id, timestamp, body).encode()
        # Standard Webhooks allows several space-separated signatures (secret rotation).
        if not any(
            hmac.compare_digest(candidate.encode(), expected) for candidate in signature.split()
        ):
            raise WebhookRejected("signature does not match (wrong secret or altered body)")
        if delivery_id in self._seen:
            raise WebhookRejected(f"delivery {delivery_id} was already received (replay)")
        return delivery_id

    def remember(self, delivery_id: str, now: float | None = None) -> None:
        """Record an accepted delivery so a replay of it is refused (while it is not stale)."""
        now = time.time() if now is None else now
        self._forget_older_than(now - self.tolerance)
        self._seen[delivery_id] = now
        while len(self._seen) > self._max_remembered:
            self._seen.popitem(last=False)

    def _forget_older_than(self, cutoff: float) -> None:
        while self._seen:
            oldest_id, seen_at = next(iter(self._seen.items()))
            if seen_at >= cutoff:
                return
            del self._seen[oldest_id]
