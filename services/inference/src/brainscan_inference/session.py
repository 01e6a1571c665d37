"""onnxruntime sessions: created from settings, warmed up, and run on whole batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from brainscan_manifest import Manifest
from brainscan_manifest.verify import smoke_input
from brainscan_servicekit import usable_cpus
from brainscan_v2protocol import onnxruntime_datatype

from .activation_map import ActivationMapError, ActivationMapper
from .settings import InferenceSettings

_OPTIMIZATION_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class WarmUpError(RuntimeError):
    """The model loaded but did not produce sane outputs on the warm-up batches."""


def create_session(onnx_path: Path, settings: InferenceSettings) -> ort.InferenceSession:
    """A CPU session with the thread and optimisation settings of the service."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads or usable_cpus()
    options.inter_op_num_threads = settings.inter_op_threads
    options.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL
        if settings.inter_op_threads > 1
        else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    options.graph_optimization_level = _OPTIMIZATION_LEVELS[settings.graph_optimization_level]
    spinning = "1" if settings.thread_spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    options.log_severity_level = 3  # onnxruntime's warnings are not actionable for operators
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


class ModelRunner:
    """Runs a batch of requests (each an input array of its own batch size) as one session call."""

    def __init__(self, session: ort.InferenceSession, manifest: Manifest) -> None:
        self.session = session
        self.manifest = manifest
        self.input_name = manifest.input.name
        cam = manifest.outputs.activation_map
        # Always ask for the feature map and the guard's score when there are: they cost almost
        # nothing and keep every batch the same call, whatever each request in it asks for.
        guard = [manifest.ood.score, manifest.ood.cues] if manifest.ood else []
        self.output_names = [
            manifest.outputs.probabilities,
            *([cam.feature_map] if cam else []),
            *guard,
        ]
        self.activation_maps = ActivationMapper(cam) if cam else None
        declared = {o.name: o for o in session.get_outputs()}
        # Protocol datatypes as the graph declares them (an unknown one refuses the model here).
        self.output_datatypes = {
            name: onnxruntime_datatype(declared[name].type) for name in self.output_names
        }
        self.output_shapes = {name: declared[name].shape for name in self.output_names}

    def run_batch(self, inputs: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Outputs per request, in request order, split back from one call."""
        batch = inputs[0] if len(inputs) == 1 else np.concatenate(inputs, axis=0)
        results = self.session.run(self.output_names, {self.input_name: batch})
        per_request: list[dict[str, np.ndarray]] = []
        start = 0
        for tensor in inputs:
            stop = start + tensor.shape[0]
            outputs = zip(self.output_names, results, strict=True)
            per_request.append({name: out[start:stop] for name, out in outputs})
            start = stop
        return per_request

    def warm_up(self, batch_sizes: Sequence[int]) -> None:
        """Run the smoke images at each batch size, activation maps included; WarmUpError if not
        sane, so a model that would fail requests is never served."""
        base = smoke_input(self.manifest, batch=2)
        classes = len(self.manifest.classes)
        for size in batch_sizes:
            images = np.resize(base, (size, *base.shape[1:]))
            try:
                (outputs,) = self.run_batch([images])
            except Exception as exc:  # onnxruntime raises its own exception types
                raise WarmUpError(f"warm-up at batch {size} failed: {exc}") from exc
            probabilities = outputs[self.manifest.outputs.probabilities]
            if probabilities.shape != (size, classes):
                raise WarmUpError(
                    f"warm-up at batch {size}: probabilities have shape {probabilities.shape}, "
                    f"expected {(size, classes)}"
                )
            for name, tensor in outputs.items():
                if not np.all(np.isfinite(tensor)):
                    raise WarmUpError(f"warm-up at batch {size}: output {name!r} is not finite")
            if self.activation_maps is not None:
                self._warm_up_activation_maps(outputs, probabilities.argmax(axis=1))

    def _warm_up_activation_maps(self, outputs: dict[str, np.ndarray], classes: np.ndarray) -> None:
        # Static checks cannot see every misfit (a symbolic channel count, a graph that returns
        # another rank than it declares): computing one map per batch size is the real check.
        mapper = self.activation_maps
        assert mapper is not None
        size = len(classes)
        try:
            maps = mapper.maps(outputs[mapper.feature_map], classes)
        except ActivationMapError as exc:
            raise WarmUpError(f"warm-up at batch {size}: activation map failed: {exc}") from exc
        if maps.ndim != 3 or maps.shape[0] != size:
            raise WarmUpError(
                f"warm-up at batch {size}: activation maps have shape {maps.shape}, "
                f"expected [{size}, h, w]"
            )
