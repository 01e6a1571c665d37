"""Reading a model's outputs from an inference answer, checked: what the served model, the
challenger in shadow and the canary all answer is read the same way."""

from __future__ import annotations

import numpy as np
from brainscan_manifest import Manifest
from brainscan_v2protocol import InferResponse

from ..upstream.client import ACTIVATION_MAP_OUTPUT, InferenceFailed
from .distribution_check import guard_outputs


def requested(manifest: Manifest, explain: bool = False) -> list[str]:
    """The outputs to ask inference for: probabilities, the guard's, and the activation map
    when the answer explains itself."""
    names = [manifest.outputs.probabilities, *guard_outputs(manifest)]
    return [*names, ACTIVATION_MAP_OUTPUT] if explain else names


def probabilities(result: InferResponse, manifest: Manifest) -> np.ndarray:
    """The one image's class probabilities, in the manifest's class order; InferenceFailed
    when they are missing, of the wrong shape or not finite."""
    tensor = result.outputs.get(manifest.outputs.probabilities)
    if tensor is None or tensor.ndim != 2 or tensor.shape != (1, len(manifest.classes)):
        raise InferenceFailed(
            "the inference service returned no usable probabilities "
            f"(expected shape [1, {len(manifest.classes)}])"
        )
    values = tensor[0].astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InferenceFailed("the inference service returned non-finite probabilities")
    return values


def activation_map(result: InferResponse) -> np.ndarray:
    tensor = result.outputs.get(ACTIVATION_MAP_OUTPUT)
    if tensor is None or tensor.ndim != 3 or tensor.shape[0] != 1:
        raise InferenceFailed("the inference service returned no usable activation map")
    return tensor[0]
