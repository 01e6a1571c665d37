"""A decoded upload made into the model input of one input spec (the manifest's)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from brainscan_manifest import InputSpec
from brainscan_manifest.preprocess import to_input_array

from ..imaging.decoding import DecodedImage


@dataclass(frozen=True)
class PreparedImage:
    """A decoded upload and the model input made from it for one input spec."""

    decoded: DecodedImage
    spec: InputSpec
    tensor: np.ndarray  # with its batch axis of 1


def prepare_for(decoded: DecodedImage, spec: InputSpec) -> PreparedImage:
    """The input ``spec`` asks for; CPU work, run it in a worker thread."""
    return PreparedImage(decoded, spec, to_input_array(decoded.image, spec)[None, ...])
