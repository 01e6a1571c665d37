"""A loaded, warmed model: its manifest, session runner and batcher, and the request semantics.

Checks an inference request against the manifest (input name, datatype, shape, batch limit,
finite values, output names, activation-map parameters), queues it for the batcher and shapes
the outputs the client asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from brainscan_manifest import Manifest
from brainscan_servicekit import get_logger
from brainscan_v2protocol import MANIFEST_TO_V2

from .batching import DynamicBatcher
from .codec import InferRequest, ResponseOutput
from .errors import ActivationMapFailed, BadRequest
from .session import ModelRunner

ACTIVATION_MAP_OUTPUT = "activation_map"
"""The output computed by the service (not the ONNX graph): the class activation map."""
PLATFORM = "onnxruntime_onnx"
_log = get_logger(__name__)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: list[int]

    def as_metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


@dataclass(frozen=True)
class CheckedRequest:
    """An inference request checked against one model: the input array and what to answer."""

    model: LoadedModel
    images: np.ndarray
    outputs: dict[str, tuple[bool, dict[str, Any]]]
    """Output name -> (binary?, parameters echoed back), in the order the client asked."""
    activation_class: int | None
    """The class the maps are for; None: each image's predicted class."""


class LoadedModel:
    """One model version ready to serve; replaced as a whole on a hot swap."""

    def __init__(
        self,
        *,
        version: str,
        manifest: Manifest,
        onnx_path: Path,
        runner: ModelRunner,
        batcher: DynamicBatcher[np.ndarray, dict[str, np.ndarray]],
    ) -> None:
        self.name = manifest.name
        self.version = version
        self.manifest = manifest.with_version(version)
        self.onnx_path = onnx_path
        self.sha256 = manifest.onnx_sha256
        self.runner = runner
        self.batcher = batcher
        self.activation_maps = runner.activation_maps
        self.input_spec = TensorSpec(
            manifest.input.name, MANIFEST_TO_V2[manifest.input.dtype], _dims(manifest.input.shape())
        )
        self.output_specs = self._output_specs()

    # --- metadata ------------------------------------------------------------------------------
    def _output_specs(self) -> dict[str, TensorSpec]:
        runner = self.runner
        specs = {
            name: TensorSpec(name, runner.output_datatypes[name], _dims(runner.output_shapes[name]))
            for name in runner.output_names
        }
        cam = self.manifest.outputs.activation_map
        if cam is not None:
            fmap = specs[cam.feature_map].shape
            spatial = fmap[1:3] if cam.layout == "NHWC" else fmap[2:4]
            specs[ACTIVATION_MAP_OUTPUT] = TensorSpec(ACTIVATION_MAP_OUTPUT, "FP32", [-1, *spatial])
        return specs

    def metadata(self) -> dict[str, Any]:
        """The protocol's model metadata response."""
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": PLATFORM,
            "inputs": [self.input_spec.as_metadata()],
            "outputs": [spec.as_metadata() for spec in self.output_specs.values()],
        }

    # --- inference -----------------------------------------------------------------------------
    def check(self, request: InferRequest) -> CheckedRequest:
        """The request checked against this model, its input as an array; 400 if it does not fit.

        Blocking work for a JSON tensor (building the array from its values): the caller runs
        it off the event loop when the request is large.
        """
        images = self._input_array(request)
        wanted = self._requested_outputs(request)
        cam_class = self._activation_class(request) if ACTIVATION_MAP_OUTPUT in wanted else None
        return CheckedRequest(self, images, wanted, cam_class)

    async def run(self, checked: CheckedRequest) -> list[ResponseOutput]:
        """Run a request checked by this model through the batcher and shape the outputs."""
        if checked.model is not self:
            raise ValueError("the request was checked against another model version")
        images = checked.images
        results = await self.batcher.submit(images, size=images.shape[0])
        outputs = []
        probabilities = results[self.manifest.outputs.probabilities]
        for name, (binary, parameters) in checked.outputs.items():
            if name == ACTIVATION_MAP_OUTPUT:
                classes = (
                    np.argmax(probabilities, axis=1)
                    if checked.activation_class is None
                    else np.full(images.shape[0], checked.activation_class)
                )
                tensor = self._activation_maps(results[self.activation_maps.feature_map], classes)
                parameters = {**parameters, "activation_class": ",".join(map(str, classes))}
            else:
                tensor = results[name]
            outputs.append(ResponseOutput(name, tensor, binary, parameters))
        return outputs

    def _input_array(self, request: InferRequest) -> np.ndarray:
        spec = self.input_spec
        if len(request.inputs) != 1:
            raise BadRequest(
                f"model {self.name!r} takes exactly one input ({spec.name!r}), "
                f"got {len(request.inputs)}",
                code="input_name",
            )
        tensor = request.inputs[0]
        if tensor.name != spec.name:
            raise BadRequest(
                f"unknown input {tensor.name!r}: model {self.name!r} takes {spec.name!r}",
                code="input_name",
            )
        if tensor.datatype != spec.datatype:
            raise BadRequest(
                f"input {spec.name!r} has datatype {tensor.datatype}, "
                f"model expects {spec.datatype}",
                code="input_datatype",
            )
        if len(tensor.shape) != len(spec.shape) or list(tensor.shape[1:]) != spec.shape[1:]:
            raise BadRequest(
                f"input {spec.name!r} has shape {list(tensor.shape)}, model expects "
                f"{spec.shape} ({self.manifest.input.layout}, -1 = batch size)",
                code="input_shape",
            )
        batch = tensor.shape[0]
        if batch < 1:
            raise BadRequest(f"input {spec.name!r}: batch size is 0", code="input_shape")
        if batch > self.batcher.max_batch_size:
            raise BadRequest(
                f"input {spec.name!r}: batch of {batch} is over the limit of "
                f"{self.batcher.max_batch_size}; split it into several requests",
                code="batch_too_large",
            )
        array = tensor.to_numpy()
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise BadRequest(
                f"input {spec.name!r} holds NaN or infinite values", code="input_not_finite"
            )
        return array

    def _requested_outputs(self, request: InferRequest) -> dict[str, tuple[bool, dict[str, Any]]]:
        """Output name -> (binary?, parameters echoed back), in the order the client asked."""
        cam_param = request.parameters.get(ACTIVATION_MAP_OUTPUT, False)
        if not isinstance(cam_param, bool):
            raise BadRequest("parameter activation_map must be true or false", code="parameter")
        if request.outputs is None:
            names = [self.manifest.outputs.probabilities]
            wanted = {name: (request.binary_output, {}) for name in names}
        else:
            wanted = {}
            for output in request.outputs:
                if output.name not in self.output_specs and output.name != ACTIVATION_MAP_OUTPUT:
                    raise BadRequest(
                        f"unknown output {output.name!r}: model {self.name!r} has "
                        f"{sorted(self.output_specs)}",
                        code="output_name",
                    )
                if output.name in wanted:
                    raise BadRequest(f"output {output.name!r} requested twice", code="output_name")
                wanted[output.name] = (output.binary, {})
        if cam_param and ACTIVATION_MAP_OUTPUT not in wanted:
            wanted[ACTIVATION_MAP_OUTPUT] = (request.binary_output, {})
        if ACTIVATION_MAP_OUTPUT in wanted and self.activation_maps is None:
            raise BadRequest(
                f"model {self.name!r} has no feature map and classifier weights in its "
                "manifest, so it cannot give activation maps",
                code="activation_map_unavailable",
            )
        return wanted

    def _activation_class(self, request: InferRequest) -> int | None:
        """The class index the client asked maps for, or None for each image's predicted class."""
        value = request.parameters.get("activation_class")
        for output in request.outputs or []:
            if output.name == ACTIVATION_MAP_OUTPUT and "activation_class" in output.parameters:
                value = output.parameters["activation_class"]
        if value is None:
            return None
        classes = self.manifest.classes
        if isinstance(value, str):
            if value in classes:
                return classes.index(value)
            raise BadRequest(
                f"activation_class {value!r} is not a class of model {self.name!r} ({classes})",
                code="parameter",
            )
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(classes):
            return value
        raise BadRequest(
            f"activation_class must be a class name or an index 0..{len(classes) - 1}",
            code="parameter",
        )

    def _activation_maps(self, feature_map: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """The maps, or 500 ``activation_map_failed``: the request was valid, the model is not.

        Warm-up computes maps before a model is served, so this is reached only by a misfit
        warm-up could not see; it is answered plainly rather than as an unexplained error.
        """
        assert self.activation_maps is not None
        try:
            return self.activation_maps.maps(feature_map, classes)
        except Exception as exc:  # numpy raises several types; each means a broken model
            _log.error(
                "activation map failed",
                **{
                    "model.name": self.name,
                    "model.version": self.version,
                    "error.type": type(exc).__name__,
                    "error.message": str(exc),
                },
            )
            raise ActivationMapFailed(
                f"model {self.name!r} version {self.version!r} cannot compute activation maps "
                f"({exc}); this is a fault of the model package, not of the request: ask "
                "without activation_map, or serve a package whose weights fit its feature map"
            ) from None

    async def close(self) -> None:
        """Finish every queued request, then release the worker thread."""
        await self.batcher.close()


def _dims(shape: list[int | str | None]) -> list[int]:
    """Protocol shape: -1 for a dynamic or symbolic dimension."""
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]
