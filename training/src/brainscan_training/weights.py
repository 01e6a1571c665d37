"""Where the backbone's starting weights come from: none, a local file, or Keras' own cache.

Checked before training starts, and nothing is ever downloaded: the build machines have no
internet, and a run whose weights depend on what a server hands out that day is not
reproducible. `imagenet` is therefore read from the file Keras would have cached.
"""

from __future__ import annotations

import os
from pathlib import Path

# The width multipliers Keras publishes ImageNet weights for, and the input sides it has files
# for (any other side loads the 224 px file, as keras.applications.MobileNetV2 does).
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
IMAGENET_SIZES = (96, 128, 160, 192, 224)
WEIGHTS_SUFFIXES = (".h5", ".hdf5")


class WeightsFileMissing(FileNotFoundError):
    """model.weights names a file that is not there (the CLI prints it as one line)."""


def imagenet_cache_file(alpha: float, input_size: int) -> Path:
    """The file `MobileNetV2(weights="imagenet", include_top=False)` reads from Keras' cache."""
    rows = input_size if input_size in IMAGENET_SIZES else 224
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    return home / "models" / name


def backbone_weights(weights: str, alpha: float, input_size: int) -> str | None:
    """The file to start the backbone from (None: from scratch); a missing file is an error."""
    if weights == "none":
        return None
    if weights == "imagenet":
        path = imagenet_cache_file(alpha, input_size)
        if not path.is_file():
            raise WeightsFileMissing(
                f"model.weights is imagenet but Keras' cache has no {path}: copy that file "
                "there (from keras-applications' mobilenet_v2 release) or set model.weights to "
                "a local weights file or none; nothing is downloaded at run time"
            )
        return str(path)
    path = Path(weights)
    if not path.is_file():
        raise WeightsFileMissing(
            f"model.weights file not found: {path} (copy the weights file there or fix the "
            "path, relative to the repository root; nothing is downloaded at run time)"
        )
    return str(path)
