"""MobileNetV2 classifier whose input is raw 0..255 RGB pixels: scaling lives inside the graph."""

from __future__ import annotations

import keras
from keras import layers

FEATURE_MAP_LAYER = "mobilenetv2_features"
PROBABILITIES_LAYER = "probabilities"
# Keras' default BatchNorm momentum (0.99) lags too far behind the weights in a short
# from-scratch run: the model then evaluates as one constant class although it trains well.
BATCHNORM_MOMENTUM = 0.9


def build_model(
    num_classes: int,
    image_size: int,
    alpha: float,
    dropout: float = 0.2,
    weights: str | None = None,
) -> keras.Model:
    """MobileNetV2 backbone + global average pooling + dropout + softmax head."""
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image", dtype="float32")
    # MobileNetV2 expects [-1, 1]; doing it here means serving only decodes and resizes.
    scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale_to_unit_range")(inputs)
    backbone = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3),
        alpha=alpha,
        include_top=False,
        weights=weights,
    )
    backbone.name = FEATURE_MAP_LAYER
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BATCHNORM_MOMENTUM
    features = backbone(scaled)
    pooled = layers.GlobalAveragePooling2D(name="pool")(features)
    dropped = layers.Dropout(dropout, name="dropout")(pooled)
    probabilities = layers.Dense(num_classes, activation="softmax", name=PROBABILITIES_LAYER)(
        dropped
    )
    return keras.Model(inputs, probabilities, name="brainscan_mobilenetv2")


def backbone_of(model: keras.Model) -> keras.Model:
    return model.get_layer(FEATURE_MAP_LAYER)


def with_feature_map(model: keras.Model) -> keras.Model:
    """The same layers with a second output: the last convolutional feature map (for CAM)."""
    # Rebuild the graph from the model's input so both outputs share one forward pass.
    scaled = model.get_layer("scale_to_unit_range")(model.input)
    feature_map = backbone_of(model)(scaled)
    pooled = model.get_layer("pool")(feature_map)
    dropped = model.get_layer("dropout")(pooled)
    probabilities = model.get_layer(PROBABILITIES_LAYER)(dropped)
    return keras.Model(model.input, [probabilities, feature_map], name=f"{model.name}_with_cam")


def classifier_weights(model: keras.Model) -> tuple[list[list[float]], list[float]]:
    """Dense head weights [features][classes] and bias [classes], for class activation maps."""
    kernel, bias = model.get_layer(PROBABILITIES_LAYER).get_weights()
    return kernel.astype(float).tolist(), bias.astype(float).tolist()


def set_backbone_trainable(model: keras.Model, trainable_top_layers: int | None) -> None:
    """Freeze the backbone (0), unfreeze only its top N layers, or all of it (None).

    BatchNorm layers stay in inference mode while frozen, as Keras' transfer-learning guide says.
    """
    backbone = backbone_of(model)
    backbone.trainable = trainable_top_layers is None or trainable_top_layers > 0
    cut = 0 if trainable_top_layers is None else len(backbone.layers) - trainable_top_layers
    for index, layer in enumerate(backbone.layers):
        frozen_norm = trainable_top_layers is not None and isinstance(
            layer, layers.BatchNormalization
        )
        layer.trainable = index >= cut and not frozen_norm
