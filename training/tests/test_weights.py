"""model.weights: a local weights file or Keras' cached ImageNet file loads, a missing one is a
one-line error before training starts, and nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from brainscan_testsupport.pipeline import tiny_params
from brainscan_training.cli import main
from brainscan_training.model import backbone_of, build_model
from brainscan_training.weights import WeightsFileMissing, backbone_weights, imagenet_cache_file

# Keras' H5 writers warn once per array under numpy 2 (its own code, not ours).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
TINY = tiny_params(yaml.safe_load(PARAMS.read_text()))
ALPHA, SIZE = TINY["model"]["alpha"], TINY["model"]["input_size"]


def saved_backbone(path: Path) -> list[np.ndarray]:
    """A MobileNetV2 backbone as the tiny profile builds it, saved to `path`; its weights."""
    keras.utils.set_random_seed(123)  # not the seed a fresh build_model below would draw
    backbone = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=ALPHA, include_top=False, weights=None
    )
    if path.name.endswith(".weights.h5"):
        backbone.save_weights(path)
    else:  # the legacy H5 format Keras' own ImageNet files come in
        backbone.save(path)
    return backbone.get_weights()


def assert_same(loaded: list[np.ndarray], saved: list[np.ndarray]) -> None:
    assert len(loaded) == len(saved)
    for got, expected in zip(loaded, saved, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_a_local_weights_file_is_what_the_backbone_starts_from(tmp_path):
    path = tmp_path / "imagenet_backbone.weights.h5"
    saved = saved_backbone(path)
    weights = backbone_weights(str(path), ALPHA, SIZE)
    assert weights == str(path)
    model = build_model(4, SIZE, ALPHA, weights=weights)
    assert_same(backbone_of(model).get_weights(), saved)
    # A model built from scratch differs, so the equality above is the file's doing.
    fresh = backbone_of(build_model(4, SIZE, ALPHA)).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(fresh, saved, strict=True))


def test_imagenet_is_read_from_keras_cache_without_a_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    cached = imagenet_cache_file(ALPHA, SIZE)
    # Keras has no 32 px file: it loads the 224 px one for any other side, so do we.
    assert cached == tmp_path / "keras/models" / (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    )
    assert imagenet_cache_file(1, 128).name.endswith("_1.0_128_no_top.h5")
    cached.parent.mkdir(parents=True)
    saved = saved_backbone(cached)
    model = build_model(4, SIZE, ALPHA, weights=backbone_weights("imagenet", ALPHA, SIZE))
    assert_same(backbone_of(model).get_weights(), saved)


def test_none_means_from_scratch():
    assert backbone_weights("none", ALPHA, SIZE) is None


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "backbone.weights.h5"
    with pytest.raises(WeightsFileMissing) as caught:
        backbone_weights(str(missing), ALPHA, SIZE)
    assert str(caught.value).startswith(f"model.weights file not found: {missing} (")


def test_imagenet_without_the_cached_file_is_an_error_not_a_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    with pytest.raises(WeightsFileMissing) as caught:
        backbone_weights("imagenet", ALPHA, SIZE)
    message = str(caught.value)
    assert str(imagenet_cache_file(ALPHA, SIZE)) in message
    assert "nothing is downloaded" in message and "\n" not in message


def test_train_stops_with_one_line_before_loading_data_or_tracking(tmp_path, capsys):
    """No data, no MLflow server: the weights check is the first thing the stage does."""
    params = dict(TINY, model={**TINY["model"], "weights": str(tmp_path / "missing.weights.h5")})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert main(["--params", str(path), "train"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"brainscan-train train: model.weights file not found: {tmp_path / 'missing.weights.h5'} "
        "(copy the weights file there or fix the path, relative to the repository root; nothing "
        "is downloaded at run time)\n"
    )
