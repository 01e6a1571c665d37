"""The canary: a share of real answers given by the challenger, labelled as such.

Shadowing shows how a challenger compares without anyone seeing it; a canary is the next step,
where it answers a small share of real requests (``GATEWAY_CANARY_FRACTION``) before it is
promoted, each answer saying so (``model.role: "challenger"``). The challenger is the one the
shadow mirror follows (the same ``GET /v2/models/{name}/challenger/manifest``).

An answer must never fail because of the canary: a challenger that is not held by the replica
asked, busy, slow or broken falls back to the served model for that request (counted), and the
canary calls have a circuit breaker of their own, so a failing challenger never opens the one in
front of the served model.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from brainscan_manifest import Manifest
from brainscan_servicekit import get_logger
from brainscan_v2protocol import InferResponse

from ..errors import GatewayError
from ..metrics import GatewayMetrics
from ..upstream.client import InferenceClient
from . import outputs
from .distribution_check import check_distribution
from .preparation import PreparedImage, prepare_for
from .shadow import ShadowMirror

_log = get_logger("brainscan.canary")

PRODUCTION_ROLE = "production"
CHALLENGER_ROLE = "challenger"


class Canary:
    """Answers ``fraction`` of the predictions with the challenger, when there is one."""

    def __init__(
        self,
        client: InferenceClient,
        mirror: ShadowMirror,
        metrics: GatewayMetrics,
        fraction: float,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.mirror = mirror
        self.metrics = metrics
        self.fraction = fraction
        self._sample = sample

    def pick(self, explain: bool) -> Manifest | None:
        """The challenger, for this request's share of canary answers (None: the served model
        answers). A challenger that cannot explain never takes an explain request."""
        challenger = self.mirror.challenger
        if challenger is None or self._sample() >= self.fraction:
            return None
        if explain and challenger.outputs.activation_map is None:
            return None
        return challenger

    async def answer(
        self,
        challenger: Manifest,
        prepared: PreparedImage,
        explain: bool,
        request_id: str,
        image_work,
    ) -> tuple[PreparedImage, InferResponse] | None:
        """The challenger's answer, or None when it cannot give one (the served model answers
        instead). ``image_work`` runs pixel work in the predictor's slots."""
        if prepared.spec != challenger.input:
            prepared = await image_work(prepare_for, prepared.decoded, challenger.input)
        try:
            result = await self.client.infer(
                prepared.tensor,
                challenger.input.name,
                outputs.requested(challenger, explain),
                request_id=request_id,
                version=challenger.version,
            )
            # An answer the predictor could not read must not reach it: fall back instead.
            outputs.probabilities(result, challenger)
            check_distribution(result, challenger, prepared.decoded.size)
            if explain:
                outputs.activation_map(result)
        except GatewayError as exc:
            self.metrics.canary_answers.labels(challenger.version or "", "fell_back").inc()
            _log.warning(
                "canary fell back to the served model",
                **{
                    "event.action": "canary-fallback",
                    "brainscan.shadow.challenger.version": challenger.version,
                    "error.code": str(exc.code),
                },
            )
            return None
        self.metrics.canary_answers.labels(challenger.version or "", "answered").inc()
        return prepared, result
