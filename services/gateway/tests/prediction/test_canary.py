"""The canary: a share of real answers from the challenger, labelled, never a failed answer."""

from __future__ import annotations

import httpx
from gateway_images import png_bytes
from gateway_shadow import eventually, metric, predict, shadow_of


def test_canary_answers_come_from_the_challenger_and_say_so(shadow_stack):
    shadow_stack.challenge("2")
    gateway = shadow_stack.gateway(canary_fraction=1.0)
    eventually(lambda: shadow_of(gateway, "2"), "the gateway following challenger 2")
    answers = [predict(gateway, size) for size in (48, 64, 80)]
    assert [answer["model"]["version"] for answer in answers] == ["2", "2", "2"]
    assert {answer["model"]["role"] for answer in answers} == {"challenger"}
    assert metric(gateway, "gateway_canary_answers_total", outcome="answered") == 3
    assert metric(gateway, "gateway_predictions_total", model_version="2") == 3
    # A canary answer is the challenger's own: nothing to compare it with in shadow.
    assert shadow_of(gateway, "2")["mirrored"] == 0


def test_without_a_canary_every_answer_is_the_served_models(shadow_stack):
    shadow_stack.challenge("2")
    gateway = shadow_stack.gateway()
    eventually(lambda: shadow_of(gateway, "2"), "the gateway following challenger 2")
    answer = predict(gateway)
    assert answer["model"] == {"name": answer["model"]["name"], "version": "1",
                               "role": "production"}  # fmt: skip
    assert metric(gateway, "gateway_canary_answers_total") == 0


def test_a_challenger_that_cannot_answer_falls_back_to_the_served_model(shadow_stack):
    """The gateway still believes in a challenger inference no longer holds (it asks again only
    every 5 s): the canary's call gets 404, and the served model answers that request."""
    shadow_stack.challenge("2")
    gateway = shadow_stack.gateway(canary_fraction=1.0, shadow_refresh_seconds=5)
    eventually(lambda: shadow_of(gateway, "2"), "the gateway following challenger 2")
    shadow_stack.withdraw()
    inference = shadow_stack.inference.url
    eventually(
        lambda: (
            httpx.get(f"{inference}/v2/models/tiny-brainscan/challenger/manifest").status_code
            == 404
        ),
        "inference dropping the challenger",
    )
    answer = httpx.post(
        f"{gateway.url}/api/v1/predictions", files={"file": ("s.png", png_bytes())}, timeout=30
    )
    assert answer.status_code == 200
    assert answer.json()["model"]["version"] == "1"
    assert answer.json()["model"]["role"] == "production"
    assert metric(gateway, "gateway_canary_answers_total", outcome="fell_back") == 1
    assert metric(gateway, "gateway_circuit_breaker_state", state="closed") == 1
