"""The training pipeline's parameters shrunk to minutes on 2 cores, for tests that run it whole.

A handful of 64 px images per class, a 32 px model and one epoch per phase: the model means
nothing, every stage still runs as in production (``dvc repro``, the training image, the demo).
"""

from __future__ import annotations

import copy
from typing import Any

TINY_PROFILE = {
    "train_per_class": 24,
    "test_per_class": 8,
    "epochs": 1,
    "finetune_epochs": 1,
    "batch_size": 16,
    "learning_rate": 0.003,
    "finetune_learning_rate": 0.0003,
    "finetune_top_layers": 10,
    "early_stopping_patience": 1,
}


def tiny_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` (as read from params.yaml) with the tiny profile active."""
    tiny = copy.deepcopy(params)
    tiny["profile"] = "tiny"
    tiny["profiles"]["tiny"] = dict(TINY_PROFILE)
    tiny["data"]["image_size"] = 64
    tiny["model"]["input_size"] = 32
    tiny["export"]["parity_images"] = 16
    return tiny
