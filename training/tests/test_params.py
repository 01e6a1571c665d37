"""params.yaml: profiles and the mistakes a user can make in it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from brainscan_testsupport.pipeline import tiny_params
from brainscan_training.params import SYNTHETIC_SOURCE_DIR, input_spec, load_params
from pydantic import ValidationError

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def write(tmp_path, **changes):
    raw = yaml.safe_load(PARAMS.read_text())
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition(".")
        (raw[section] if section else raw)[key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_repository_params_load_with_both_profiles():
    quick = load_params(PARAMS, "quick")
    full = load_params(PARAMS, "full")
    assert quick.active.train_per_class < full.active.train_per_class
    assert quick.classes == ["glioma", "meningioma", "notumor", "pituitary"]


def test_the_tests_tiny_profile_is_a_valid_and_small_profile(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params(yaml.safe_load(PARAMS.read_text()))))
    tiny = load_params(path)
    assert tiny.profile == "tiny"
    assert tiny.active.train_per_class < load_params(PARAMS, "quick").active.train_per_class
    assert input_spec(tiny).height == 32


def test_input_spec_carries_the_training_preprocessing():
    spec = input_spec(load_params(PARAMS))
    assert (spec.height, spec.width, spec.dtype, spec.resize_filter) == (
        128,
        128,
        "uint8",
        "bilinear",
    )


def test_unknown_profile_is_named(tmp_path):
    with pytest.raises(ValidationError, match="profile 'huge' not in profiles"):
        load_params(write(tmp_path, profile="huge"))


def test_directory_source_needs_a_path(tmp_path):
    with pytest.raises(ValidationError, match=r"data\.source_dir still names the synthetic"):
        load_params(write(tmp_path, **{"data.source": "directory"}))
    with pytest.raises(ValidationError, match=r"data\.source_dir is empty"):
        load_params(write(tmp_path, **{"data.source": "directory", "data.source_dir": ""}))


def test_synthetic_source_dir_is_the_generator_dvc_hashes():
    assert load_params(PARAMS).data.source_dir == SYNTHETIC_SOURCE_DIR
    assert (PARAMS.parent / SYNTHETIC_SOURCE_DIR / "synthetic.py").is_file()


def test_source_dir_with_a_tilde_is_refused_as_dvc_would_not_expand_it(tmp_path):
    changes = {"data.source": "directory", "data.source_dir": "~/kaggle"}
    with pytest.raises(ValidationError, match="DVC does not expand ~"):
        load_params(write(tmp_path, **changes))


def test_misspelt_key_is_rejected(tmp_path):
    with pytest.raises(ValidationError, match="alpah"):
        load_params(write(tmp_path, **{"model.alpah": 0.5}))


@pytest.mark.parametrize("weights", ["none", "imagenet", "weights/backbone.weights.h5"])
def test_model_weights_accept_none_imagenet_or_a_weights_file(tmp_path, weights):
    # The file need not exist to load params: train checks it (test_weights.py).
    assert load_params(write(tmp_path, **{"model.weights": weights})).model.weights == weights


def test_model_weights_that_are_not_a_weights_file_are_named(tmp_path):
    with pytest.raises(ValidationError, match=r"a path to a \.h5 weights file .*'imagenet1k'"):
        load_params(write(tmp_path, **{"model.weights": "imagenet1k"}))


def test_imagenet_weights_need_an_alpha_keras_has_them_for(tmp_path):
    path = write(tmp_path, **{"model.weights": "imagenet", "model.alpha": 0.3})
    with pytest.raises(ValidationError, match=r"no ImageNet weights exist for alpha 0\.3"):
        load_params(path)
