"""Prometheus metrics of the gateway, in a registry of their own (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .upstream.circuit_breaker import BreakerState

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CONFIDENCE_BUCKETS = (0.25, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


class GatewayMetrics:
    """Requests, latencies, predictions by label, uncertain ones, confidence, upstream errors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "gateway_http_request_duration_seconds",
            "Time from request received to response sent, by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.phase_duration = Histogram(
            "gateway_prediction_phase_duration_seconds",
            "Time spent per phase of a prediction (decode, inference, explain).",
            ["phase"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "gateway_predictions_total",
            "Predictions returned, by predicted label and model version.",
            ["label", "model_version"],
            registry=self.registry,
        )
        self.uncertain = Counter(
            "gateway_predictions_below_threshold_total",
            "Predictions whose confidence was below the threshold (flagged uncertain), by label.",
            ["label"],
            registry=self.registry,
        )
        self.confidence = Histogram(
            "gateway_prediction_confidence",
            "Confidence of the predicted class, by model version.",
            ["model_version"],
            buckets=_CONFIDENCE_BUCKETS,
            registry=self.registry,
        )
        self.ood_checks = Counter(
            "gateway_ood_checks_total",
            "Out-of-distribution checks by model version and result (in_distribution, "
            "out_of_distribution, unavailable: the model carries no reference).",
            ["model_version", "result"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "gateway_rejected_requests_total",
            "Requests refused before inference (bad upload, auth, rate limit), by error code.",
            ["code"],
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors_total",
            "Failed calls to the inference service, by error code.",
            ["code"],
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "gateway_circuit_breaker_state",
            "State of the circuit breaker in front of inference (1 for the current state).",
            ["state"],
            registry=self.registry,
        )
        self.set_breaker_state(BreakerState.CLOSED)
        self._shadow_metrics()
        self._feedback_metrics()

    def _feedback_metrics(self) -> None:
        """Reviewers' feedback (feedback/desk.py) and the predictions held for it."""
        self.feedback = Counter(
            "gateway_feedback_total",
            "Feedback stored, by model version, the model's label, the reviewer's label and "
            "outcome (confirmation: the same label, correction: another one).",
            ["model_version", "model_label", "label", "outcome"],
            registry=self.registry,
        )
        self.feedback_pending = Gauge(
            "gateway_feedback_pending",
            "Answered predictions whose decoded image is held in memory for feedback.",
            registry=self.registry,
        )
        self.feedback_pending_bytes = Gauge(
            "gateway_feedback_pending_bytes",
            "Bytes of decoded pixels held in memory for feedback.",
            registry=self.registry,
        )

    def set_feedback_pending(self, count: int, nbytes: int) -> None:
        self.feedback_pending.set(count)
        self.feedback_pending_bytes.set(nbytes)

    def _shadow_metrics(self) -> None:
        """The comparison of mirrored predictions with the challenger (prediction/shadow.py)."""
        self.shadow_pairs = Counter(
            "gateway_shadow_pairs_total",
            "Predictions compared with the challenger in shadow: the champion-by-challenger "
            "matrix of labels, by both versions.",
            ["champion_version", "challenger_version", "champion_label", "challenger_label"],
            registry=self.registry,
        )
        self.shadow_agreed = Counter(
            "gateway_shadow_agreed_total",
            "Compared predictions on whose label the challenger agreed with the champion.",
            ["challenger_version"],
            registry=self.registry,
        )
        self.shadow_distribution_pairs = Counter(
            "gateway_shadow_distribution_pairs_total",
            "Compared predictions by both out-of-distribution verdicts (in_distribution, "
            "out_of_distribution, unavailable).",
            ["challenger_version", "champion", "challenger"],
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "gateway_shadow_dropped_total",
            "Predictions offered for comparison and not compared, by reason (answers_busy: "
            "the gateway answers more at once than it mirrors beside, queue_full, "
            "inference_busy, circuit_open: the challenger failed too often, not_held: the "
            "replica asked does not hold the challenger).",
            ["reason"],
            registry=self.registry,
        )
        self.shadow_failed = Counter(
            "gateway_shadow_failed_total",
            "Mirrored predictions the challenger failed, by error code.",
            ["reason"],
            registry=self.registry,
        )
        self.shadow_inference_duration = Histogram(
            "gateway_shadow_inference_duration_seconds",
            "Inference call time of compared predictions, by role (champion, challenger).",
            ["role"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.canary_answers = Counter(
            "gateway_canary_answers_total",
            "Predictions picked for the canary, by challenger version and outcome (answered by "
            "the challenger, or fell_back to the served model).",
            ["challenger_version", "outcome"],
            registry=self.registry,
        )
        self.shadow_queue_depth = Gauge(
            "gateway_shadow_queue_depth",
            "Predictions waiting to be mirrored to the challenger.",
            registry=self.registry,
        )

    def set_breaker_state(self, state: BreakerState) -> None:
        for each in BreakerState:
            self.breaker_state.labels(each.value).set(1 if each is state else 0)
