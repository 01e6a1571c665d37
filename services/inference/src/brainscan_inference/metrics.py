"""Prometheus metrics of the inference service, on a registry of its own (one per app)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class InferenceMetrics:
    """Every metric the service exports; see docs/inference.md for what each means."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "brainscan_inference_requests",
            "Inference requests by model, version and outcome "
            "(success, client_error, unavailable, error).",
            ["model", "version", "outcome"],
            registry=r,
        )
        self.request_duration = Histogram(
            "brainscan_inference_request_duration_seconds",
            "Time from request received to response ready, by model, version and outcome.",
            ["model", "version", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "brainscan_inference_batch_size",
            "Images per onnxruntime call made by the dynamic batcher.",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.run_duration = Histogram(
            "brainscan_inference_model_run_duration_seconds",
            "Time of one onnxruntime call on a whole batch.",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "brainscan_inference_queue_depth",
            "Requests waiting for the model (not counting the batch being computed).",
            registry=r,
        )
        self.model_loads = Counter(
            "brainscan_inference_model_loads",
            "Model packages offered by the source, by outcome (loaded, refused).",
            ["model", "outcome"],
            registry=r,
        )
        self.model = Info(
            "brainscan_inference_model",
            "The model version being served (name, version, sha256).",
            registry=r,
        )
        self.ready = Gauge(
            "brainscan_inference_ready", "1 when a model is loaded and warmed up.", registry=r
        )
        self.challenger = Gauge(
            "brainscan_inference_challenger",
            "1 per challenger version held in shadow (answered only when asked for by version).",
            ["model", "version"],
            registry=r,
        )
        self.model_bytes = Gauge(
            "brainscan_inference_model_bytes",
            "Size of each held model's ONNX file, by role (served, challenger): what holding a"
            " challenger costs besides its onnxruntime session.",
            ["role"],
            registry=r,
        )

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(lambda: float(depth()))

    def batch_observer(self, model: str, version: str) -> Callable[[int, float], None]:
        """A callback for the batcher of one model version."""
        size = self.batch_size.labels(model, version)
        duration = self.run_duration.labels(model, version)

        def observe(batch_size: int, seconds: float) -> None:
            size.observe(batch_size)
            duration.observe(seconds)

        return observe
