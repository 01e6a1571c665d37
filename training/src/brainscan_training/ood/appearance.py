"""A small self-supervised network that knows what an untouched training image looks like.

It is trained, on the training images alone, to tell which of a few transforms was applied:
none, a rotation by 90, 180 or 270 degrees, squashing, extreme windowing or inversion, a
zoom into part of the head, a tone curve no scanner produces, or the outer layers of the head
stripped away (Golan & El-Yaniv 2018; Hendrycks et al. 2019 use such tasks to detect
anomalies). To solve it the network must learn which way up anatomy is, what tissue contrasts
look like and how a head fills the frame: the classifier, trained only to tell tumour types
apart on correctly oriented slices, never needs to. Its probability that nothing was done to
an image is the guard's ``appearance`` cue; it runs inside the served ONNX graph.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np
import onnx
import tensorflow as tf
from keras import layers

from .cues import APPEARANCE_OUTPUT as OUTPUT_NAME

log = logging.getLogger(__name__)

INPUT_NAME = "pixels"
WIDTHS = (16, 32, 48, 64)
WORKING_SIDE = 32
"""Views larger than this are averaged down first: orientation and contrast need no detail.
At 32 px (from the 64 px view of a 128 px model) the network costs a quarter of what it did at
64, for the same corpus detection (docs/ood.md)."""


def _resized(image: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    return tf.image.resize(image, tf.shape(like)[:2])


def _rotated(turns: int):
    def rotate(image: tf.Tensor) -> tf.Tensor:
        return _resized(tf.image.rot90(image, turns), image)

    return rotate


def _squashed(image: tf.Tensor) -> tf.Tensor:
    """The middle 45-70 % of one axis stretched over the whole: pixels of the wrong aspect."""
    shape = tf.shape(image)
    share = tf.random.uniform([], 0.45, 0.7)

    def along(axis: int) -> tf.Tensor:
        size = tf.cast(tf.cast(shape[axis], tf.float32) * share, tf.int32)
        start = (shape[axis] - size) // 2
        part = image[start : start + size] if axis == 0 else image[:, start : start + size]
        return _resized(part, image)

    return tf.cond(tf.random.uniform([]) < 0.5, lambda: along(0), lambda: along(1))


def _windowed(image: tf.Tensor) -> tf.Tensor:
    """Gamma far outside any scanner's (0.2-0.45 or 2.2-4), inverted, or a narrow window."""
    values = image / 255.0
    low, high = tf.random.uniform([], 0.2, 0.45), tf.random.uniform([], 2.2, 4.0)
    centre, width = tf.random.uniform([], 0.2, 0.6), tf.random.uniform([], 0.05, 0.2)
    kind = tf.random.uniform([], 0, 4, dtype=tf.int32)
    out = tf.switch_case(
        kind,
        [
            lambda: values**high,
            lambda: values**low,
            lambda: 1.0 - values,
            lambda: tf.clip_by_value((values - centre) / width, 0.0, 1.0),
        ],
    )
    return out * 255.0


def _zoomed(image: tf.Tensor) -> tf.Tensor:
    """A random 35-60 % crop blown up to the whole frame."""
    shape = tf.shape(image)
    share = tf.random.uniform([], 0.35, 0.6)
    size = tf.cast(tf.cast(shape[:2], tf.float32) * share, tf.int32)
    return _resized(tf.image.random_crop(image, tf.concat([size, shape[2:]], 0)), image)


def _tone_curve(image: tf.Tensor) -> tf.Tensor:
    """A random non-monotone tone curve: tissue contrasts that no sequence produces."""
    values = image / 255.0
    freq = tf.random.uniform([2], 1.0, 3.0)
    phase = tf.random.uniform([2], 0.0, 2 * np.pi)
    amplitude = tf.random.uniform([2], 0.15, 0.35)
    out = values + tf.reduce_sum(
        amplitude * tf.sin(2 * np.pi * freq * values[..., None] + phase), axis=-1
    )
    low, high = tf.reduce_min(out), tf.reduce_max(out)
    return (out - low) / (high - low + 1e-6) * 255.0


def _stripped(image: tf.Tensor) -> tf.Tensor:
    """Everything outside an eroded head mask set to black: a skull-stripped look."""
    grey = tf.reduce_mean(image, axis=-1, keepdims=True)[None]
    head = tf.cast(grey > tf.random.uniform([], 15.0, 40.0), tf.float32)
    kind = tf.random.uniform([], 0, 3, dtype=tf.int32)
    erosions = [
        lambda size=size: -tf.nn.max_pool2d(-head, ksize=size, strides=1, padding="SAME")
        for size in (7, 11, 15)
    ]
    return image * tf.switch_case(kind, erosions)[0]


TRANSFORMS = (
    ("untouched", lambda image: image),
    ("rotated_90", _rotated(1)),
    ("rotated_180", _rotated(2)),
    ("rotated_270", _rotated(3)),
    ("squashed", _squashed),
    ("windowed", _windowed),
    ("zoomed", _zoomed),
    ("tone_curve", _tone_curve),
    ("stripped", _stripped),
)


def transformed(image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One training pair from a grey [H, W] image: it randomly transformed (or untouched), and
    the transform's index.

    Left-right mirroring is applied to all: brains are near-symmetric, the classifier is trained
    with it, and a mirrored image is as valid as the original.
    """
    image = tf.image.random_flip_left_right(image[..., None])
    kind = tf.random.uniform([], 0, len(TRANSFORMS), dtype=tf.int32)
    out = tf.switch_case(kind, [lambda f=f: f(image) for _, f in TRANSFORMS])
    return tf.ensure_shape(tf.clip_by_value(out, 0.0, 255.0), image.shape)[..., 0], kind


def build_network(height: int, width: int, training: bool = True) -> keras.Model:
    """Grey pixels 0..255 [N, H, W] -> [-1, 1], at most WORKING_SIDE -> four conv stages ->
    which transform.

    ``training=False`` builds the served form: each convolution with a bias and no batch
    normalisation after it (``folded`` fills it in), three fewer element-wise ops per layer.
    """
    inputs = keras.Input((height, width), name=INPUT_NAME)
    scaled = layers.Rescaling(1 / 127.5, offset=-1.0, name="unit_range")(inputs)
    grey = layers.Reshape((height, width, 1), name="grey_map")(scaled)
    side = min(WORKING_SIDE, height, width)
    if (height, width) == (side, side):
        x = grey
    elif height % side == 0 and width == height:
        # Averaging, not bilinear resizing: without antialiasing that would skip pixels.
        x = layers.AveragePooling2D(height // side, name="working_size")(grey)
    else:
        x = layers.Resizing(side, side, interpolation="bilinear", name="working_size")(grey)
    for index, filters in enumerate(WIDTHS):
        # A second conv where maps are small: cheap, and it helps.
        strides = (2, 1) if index >= len(WIDTHS) - 2 else (2,)
        for step, stride in enumerate(strides):
            name = f"conv{index}_{step}"
            x = layers.Conv2D(
                filters, 3, strides=stride, padding="same", use_bias=not training, name=name
            )(x)
            if training:
                x = layers.BatchNormalization(momentum=0.9, name=f"{name}_norm")(x)
            x = layers.ReLU()(x)
    # Flatten, not global pooling: where things are in the frame is the point.
    x = layers.Dropout(0.3)(layers.Flatten()(x))
    outputs = layers.Dense(len(TRANSFORMS), activation="softmax", name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name="appearance")


def folded(network: keras.Model) -> keras.Model:
    """The served form of a trained network: batch normalisation folded into each conv."""
    _, height, width = network.input_shape
    served = build_network(height, width, training=False)
    for layer in served.layers:
        if isinstance(layer, layers.Conv2D):
            (kernel,) = network.get_layer(layer.name).get_weights()
            norm = network.get_layer(f"{layer.name}_norm")
            gamma, beta, mean, variance = norm.get_weights()
            factor = gamma / np.sqrt(variance + norm.epsilon)
            layer.set_weights([kernel * factor, beta - mean * factor])
        elif layer.weights:
            layer.set_weights(network.get_layer(layer.name).get_weights())
    return served


def train_network(
    grey: np.ndarray, *, epochs: int, repeats: int, seed: int, batch_size: int = 64
) -> keras.Model:
    """Train on grey float [N, H, W] images 0..255; each epoch sees every one ``repeats`` times."""
    keras.utils.set_random_seed(seed)
    _, height, width = grey.shape
    network = build_network(height, width)
    dataset = (
        tf.data.Dataset.from_tensor_slices(grey.astype(np.float32))
        .shuffle(len(grey), seed=seed, reshuffle_each_iteration=True)
        .repeat(repeats)
        .map(transformed, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    steps = int(np.ceil(len(grey) * repeats / batch_size))
    network.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(3e-3, steps * epochs)
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,
    )
    started = time.perf_counter()
    history = network.fit(dataset, epochs=epochs, verbose=0)
    log.info(
        "appearance network: %d epochs in %.0f s, transform accuracy %.3f",
        epochs,
        time.perf_counter() - started,
        history.history["accuracy"][-1],
    )
    return network


def to_onnx(network: keras.Model, opset: int) -> onnx.ModelProto:
    """The trained network as ONNX, folded (input ``pixels`` grey float [N, H, W], output its
    transform probabilities)."""
    import tf2onnx

    network = folded(network)
    signature = (tf.TensorSpec((None, *network.input_shape[1:]), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(network, input_signature=signature, opset=opset)
    (output,) = proto.graph.output
    for node in proto.graph.node:
        node.output[:] = [OUTPUT_NAME if name == output.name else name for name in node.output]
    output.name = OUTPUT_NAME
    return proto
