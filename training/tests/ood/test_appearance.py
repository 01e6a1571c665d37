"""The appearance network: its transforms, batch normalisation folded for serving, and the
ONNX form computing what Keras computes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf
from brainscan_training.ood.appearance import (
    INPUT_NAME,
    OUTPUT_NAME,
    TRANSFORMS,
    build_network,
    folded,
    to_onnx,
    train_network,
)


def grey_heads(count: int, side: int = 32, seed: int = 0) -> np.ndarray:
    """Bright ellipses, taller than wide, on black: with a top and a bottom."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:side, :side] / side
    heads = []
    for _ in range(count):
        inside = ((cols - 0.5) / 0.3) ** 2 + ((rows - 0.45) / 0.42) ** 2 < 1
        chin = (rows > 0.7) & inside
        heads.append(
            np.where(inside, 160, 0) + np.where(chin, 60, 0) + rng.normal(0, 5, rows.shape)
        )
    return np.clip(np.stack(heads), 0, 255).astype(np.float32)


@pytest.mark.parametrize("index", range(len(TRANSFORMS)), ids=[n for n, _ in TRANSFORMS])
def test_every_transform_keeps_the_shape_and_range(index):
    image = tf.constant(grey_heads(1)[0][..., None])
    out = TRANSFORMS[index][1](image).numpy()
    assert out.shape == image.shape
    assert out.min() >= -1e-3 and out.max() <= 255 + 1e-3
    if index > 0:
        assert not np.allclose(out, image.numpy())


def test_the_served_form_computes_what_the_trained_one_does():
    network = train_network(grey_heads(64), epochs=1, repeats=1, seed=0)
    images = grey_heads(8, seed=1)
    trained = network.predict(images, verbose=0)
    served = folded(network).predict(images, verbose=0)
    np.testing.assert_allclose(served, trained, atol=1e-5)
    session = ort.InferenceSession(to_onnx(network, 17).SerializeToString())
    (from_onnx,) = session.run([OUTPUT_NAME], {INPUT_NAME: images})
    np.testing.assert_allclose(from_onnx, trained, atol=1e-4)


def test_a_short_training_tells_upright_from_upside_down():
    """The point of the network: orientation is learnt from the images alone."""
    network = train_network(grey_heads(256), epochs=4, repeats=2, seed=0)
    upright = network.predict(grey_heads(32, seed=2), verbose=0)[:, 0]
    flipped = network.predict(grey_heads(32, seed=2)[:, ::-1].copy(), verbose=0)[:, 0]
    assert np.median(upright) > np.median(flipped)


def test_the_network_shrinks_large_inputs_first():
    assert build_network(64, 64).get_layer("working_size").pool_size == (2, 2)
    small = build_network(32, 32)
    assert "working_size" not in [layer.name for layer in small.layers]
