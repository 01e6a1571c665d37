"""Train MobileNetV2 on the prepared splits, logging every epoch to MLflow.

From scratch (no pretrained weights can be downloaded here) the whole network trains in phase 1;
with pretrained weights phase 1 trains the head on a frozen backbone. Phase 2 fine-tunes at a
lower learning rate (the top backbone layers when pretrained, everything when from scratch).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from .dataset import Split
from .model import build_model, set_backbone_trainable
from .params import Params

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Phase:
    name: str
    epochs: int
    learning_rate: float
    trainable_top_layers: int | None  # None: the whole backbone


class MlflowEpochLogger(keras.callbacks.Callback):
    """Per-epoch metrics to the active MLflow run, numbered across phases."""

    def __init__(self, phase: str, first_epoch: int) -> None:
        super().__init__()
        self.phase = phase
        self.first_epoch = first_epoch

    def on_epoch_end(self, epoch, logs=None):
        import mlflow

        metrics = {key: float(value) for key, value in (logs or {}).items()}
        mlflow.log_metrics(metrics, step=self.first_epoch + epoch)
        log.info(
            "phase %s epoch %d: %s",
            self.phase,
            epoch + 1,
            ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()),
        )


def plan_phases(params: Params, pretrained: bool) -> list[Phase]:
    profile = params.active
    phases = [
        Phase(
            name="head" if pretrained else "full",
            epochs=profile.epochs,
            learning_rate=profile.learning_rate,
            trainable_top_layers=0 if pretrained else None,
        )
    ]
    if profile.finetune_epochs:
        phases.append(
            Phase(
                name="finetune",
                epochs=profile.finetune_epochs,
                learning_rate=profile.finetune_learning_rate,
                trainable_top_layers=profile.finetune_top_layers if pretrained else None,
            )
        )
    return phases


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Balanced weights: a class with half the images counts twice as much per image."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    if np.any(counts == 0):
        missing = [i for i, c in enumerate(counts) if c == 0]
        raise ValueError(f"training split has no images of class indices {missing}")
    return {i: float(len(labels) / (num_classes * c)) for i, c in enumerate(counts)}


def augmenter(params: Params) -> keras.Sequential:
    aug = params.augmentation
    layers_ = []
    if aug.flip:
        layers_.append(keras.layers.RandomFlip("horizontal"))
    if aug.rotation:
        layers_.append(keras.layers.RandomRotation(aug.rotation, fill_mode="constant"))
    if aug.zoom:
        layers_.append(keras.layers.RandomZoom(aug.zoom, fill_mode="constant"))
    if aug.contrast:
        layers_.append(keras.layers.RandomContrast(aug.contrast, value_range=(0, 255)))
    return keras.Sequential(layers_, name="augmentation")


def _datasets(params: Params, train: Split, val: Split):
    batch = params.active.batch_size
    augment = augmenter(params)
    train_ds = (
        tf.data.Dataset.from_tensor_slices((train.images, train.labels))
        .shuffle(len(train), seed=params.seed, reshuffle_each_iteration=True)
        .batch(batch)
        .map(
            lambda x, y: (
                tf.clip_by_value(augment(tf.cast(x, tf.float32), training=True), 0, 255),
                y,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )
    val_ds = (
        tf.data.Dataset.from_tensor_slices((val.images, val.labels))
        .batch(batch)
        .map(lambda x, y: (tf.cast(x, tf.float32), y))
        .prefetch(tf.data.AUTOTUNE)
    )
    return train_ds, val_ds


def train_model(
    params: Params,
    train: Split,
    val: Split,
    warm_start: keras.Model | None = None,
    weights: str | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Fit the model phase by phase; returns it with the best validation weights restored.

    ``weights`` is the checked file the backbone starts from (``weights.backbone_weights``).
    """
    keras.utils.set_random_seed(params.seed)
    num_classes = len(params.classes)
    model = build_model(
        num_classes, params.model.input_size, params.model.alpha, params.model.dropout, weights
    )
    if warm_start is not None:
        model.set_weights(warm_start.get_weights())
    pretrained = weights is not None or warm_start is not None
    train_ds, val_ds = _datasets(params, train, val)
    steps = int(np.ceil(len(train) / params.active.batch_size))
    history: dict[str, list[float]] = {}
    epoch_offset = 0
    for phase in plan_phases(params, pretrained):
        set_backbone_trainable(model, phase.trainable_top_layers)
        schedule = keras.optimizers.schedules.CosineDecay(phase.learning_rate, steps * phase.epochs)
        model.compile(
            optimizer=keras.optimizers.Adam(schedule),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=False,  # XLA is ~5x slower on CPU here
        )
        log.info("phase %s: %d epochs at lr %g", phase.name, phase.epochs, phase.learning_rate)
        result = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=phase.epochs,
            shuffle=False,  # the tf.data pipeline reshuffles every epoch
            class_weight=class_weights(train.labels, num_classes),
            callbacks=[
                MlflowEpochLogger(phase.name, epoch_offset),
                keras.callbacks.EarlyStopping(
                    monitor="val_accuracy",
                    patience=params.active.early_stopping_patience,
                    restore_best_weights=True,
                ),
            ],
            verbose=2,
        )
        for key, values in result.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        epoch_offset += len(result.history.get("loss", []))
    return model, history


def save_history(history: dict[str, list[float]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(history, indent=2) + "\n")
