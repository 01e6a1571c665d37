"""Webhook signatures: MLflow's own signing passes; anything forged, stale or replayed does not."""

from __future__ import annotations

import json

import pytest
from brainscan_modelsync.webhook_signature import (
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRejected,
    WebhookVerifier,
    sign,
)
from mlflow.webhooks.delivery import _generate_hmac_signature

SECRET = "a-webhook-secret-of-some-length"
NOW = 1_800_000_000.0
BODY = json.dumps(
    {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": "2027-01-15T08:00:00+00:00",
        "data": {"name": "brainscan-mobilenetv2", "alias": "production", "version": "3"},
    }
)


def headers(signature: str, timestamp: float = NOW, delivery: str = "d-1") -> dict[str, str]:
    return {
        SIGNATURE_HEADER: signature,
        TIMESTAMP_HEADER: str(int(timestamp)),
        DELIVERY_ID_HEADER: delivery,
    }


def mlflow_headers(timestamp: float = NOW, delivery: str = "d-1", secret: str = SECRET):
    """Headers exactly as MLflow 3's webhook delivery computes them."""
    signature = _generate_hmac_signature(secret, delivery, str(int(timestamp)), BODY)
    return headers(signature, timestamp, delivery)


@pytest.fixture
def verifier() -> WebhookVerifier:
    return WebhookVerifier(SECRET, tolerance_seconds=300)


def test_our_signature_is_mlflows() -> None:
    assert sign(SECRET, "d-1", str(int(NOW)), BODY.encode()) == _generate_hmac_signature(
        SECRET, "d-1", str(int(NOW)), BODY
    )


def test_a_delivery_signed_by_mlflow_is_accepted(verifier) -> None:
    assert verifier.verify(mlflow_headers(), BODY.encode(), now=NOW + 10) == "d-1"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, b: ({**h, SIGNATURE_HEADER: ""}, b), "missing x-mlflow-signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != TIMESTAMP_HEADER}, b), "missing"),
        (lambda h, b: ({k: v for k, v in h.items() if k != DELIVERY_ID_HEADER}, b), "missing"),
        (lambda h, b: (h, b.replace(b'"3"', b'"4"')), "signature does not match"),
        (lambda h, b: ({**h, DELIVERY_ID_HEADER: "d-2"}, b), "signature does not match"),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "soon"}, b), "not a Unix time"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: "v1,AAAA"}, b), "signature does not match"),
    ],
    ids=[
        "no-signature",
        "no-timestamp",
        "no-delivery-id",
        "body-altered",
        "delivery-id-altered",
        "timestamp-garbled",
        "garbage-signature",
    ],
)
def test_forged_or_altered_deliveries_are_rejected(verifier, change, reason) -> None:
    changed_headers, body = change(mlflow_headers(), BODY.encode())
    with pytest.raises(WebhookRejected, match=reason):
        verifier.verify(changed_headers, body, now=NOW)


def test_a_wrong_secret_is_rejected(verifier) -> None:
    with pytest.raises(WebhookRejected, match="signature does not match"):
        verifier.verify(mlflow_headers(secret="another-secret-entirely"), BODY.encode(), now=NOW)


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_or_future_timestamps_are_rejected(verifier, offset) -> None:
    with pytest.raises(WebhookRejected, match="stale timestamp"):
        verifier.verify(mlflow_headers(timestamp=NOW + offset), BODY.encode(), now=NOW)


def test_a_replayed_delivery_is_rejected_until_it_would_be_stale_anyway(verifier) -> None:
    delivery = verifier.verify(mlflow_headers(), BODY.encode(), now=NOW)
    verifier.remember(delivery, now=NOW)
    with pytest.raises(WebhookRejected, match="replay"):
        verifier.verify(mlflow_headers(), BODY.encode(), now=NOW + 5)
    # A new delivery ID signed properly is a different event.
    assert verifier.verify(mlflow_headers(delivery="d-9"), BODY.encode(), now=NOW + 5) == "d-9"
    # Past the tolerance the remembered ID is dropped; the old timestamp is stale by then anyway.
    with pytest.raises(WebhookRejected, match="stale"):
        verifier.verify(mlflow_headers(), BODY.encode(), now=NOW + 400)
    verifier.remember("d-10", now=NOW + 400)
    assert list(verifier._seen) == ["d-10"]


def test_one_of_several_signatures_may_match(verifier) -> None:
    good = mlflow_headers()
    good[SIGNATURE_HEADER] = "v1,bm9wZQ== " + good[SIGNATURE_HEADER]
    assert verifier.verify(good, BODY.encode(), now=NOW) == "d-1"


def test_remembered_ids_are_bounded() -> None:
    verifier = WebhookVerifier(SECRET, tolerance_seconds=300, max_remembered=3)
    for index in range(5):
        verifier.remember(f"d-{index}", now=NOW)
    assert list(verifier._seen) == ["d-2", "d-3", "d-4"]
