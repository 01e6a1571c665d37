"""onnxruntime sessions: settings applied, batches split back per request, warm-up checks."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from brainscan_inference.session import ModelRunner, WarmUpError, create_session
from brainscan_manifest.verify import load_package
from brainscan_servicekit import usable_cpus
from onnx import numpy_helper


@pytest.fixture
def runner(tmp_path, package_factory, settings_factory) -> ModelRunner:
    onnx_path, manifest = load_package(package_factory(tmp_path / "pkg"))
    session = create_session(onnx_path, settings_factory(tmp_path))
    return ModelRunner(session, manifest)


def test_one_call_on_a_batch_equals_separate_calls(runner: ModelRunner, images) -> None:
    requests = [images(1, seed=1), images(3, seed=2), images(2, seed=3)]
    together = runner.run_batch(requests)
    assert [r["probabilities"].shape for r in together] == [(1, 4), (3, 4), (2, 4)]
    for request, result in zip(requests, together, strict=True):
        (alone,) = runner.run_batch([request])
        for name in ("probabilities", "feature_map"):
            np.testing.assert_allclose(result[name], alone[name], rtol=1e-5, atol=1e-6)


def test_outputs_include_the_feature_map_when_the_manifest_has_cam(runner: ModelRunner) -> None:
    assert runner.output_names == ["probabilities", "feature_map"]


@pytest.mark.parametrize("level", ["disabled", "basic", "extended", "all"])
def test_every_optimisation_level_creates_a_session(
    tmp_path, package_factory, settings_factory, level
) -> None:
    onnx_path, manifest = load_package(package_factory(tmp_path / "pkg"))
    settings = settings_factory(tmp_path, graph_optimization_level=level, inter_op_threads=2)
    runner = ModelRunner(create_session(onnx_path, settings), manifest)
    runner.warm_up([1, 4])


def test_warm_up_refuses_a_model_with_non_finite_outputs(
    tmp_path, package_factory, settings_factory
) -> None:
    onnx_path, manifest = load_package(package_factory(tmp_path / "pkg"))
    model = onnx.load(str(onnx_path))
    for i, tensor in enumerate(model.graph.initializer):
        if tensor.name == "bias":
            nan_bias = np.full_like(numpy_helper.to_array(tensor), np.nan)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(nan_bias, "bias"))
    onnx.save(model, onnx_path)
    runner = ModelRunner(create_session(onnx_path, settings_factory(tmp_path)), manifest)
    with pytest.raises(WarmUpError, match="not finite"):
        runner.warm_up([1])


@pytest.mark.parametrize(
    ("overrides", "threads", "spinning", "mode"),
    [
        ({}, 1, "0", "ORT_SEQUENTIAL"),  # the test settings' one thread
        ({"intra_op_threads": 0}, usable_cpus(), "0", "ORT_SEQUENTIAL"),  # 0: usable CPUs
        ({"thread_spinning": True, "intra_op_threads": 2}, 2, "1", "ORT_SEQUENTIAL"),
        ({"inter_op_threads": 2, "intra_op_threads": 1}, 1, "0", "ORT_PARALLEL"),
    ],
)
def test_thread_settings_reach_the_session(
    tmp_path, package_factory, settings_factory, overrides, threads, spinning, mode
) -> None:
    onnx_path, _ = load_package(package_factory(tmp_path / "pkg"))
    session = create_session(onnx_path, settings_factory(tmp_path, **overrides))
    options = session.get_session_options()
    assert options.intra_op_num_threads == threads
    assert options.inter_op_num_threads == overrides.get("inter_op_threads", 1)
    assert options.execution_mode.name == mode
    for pool in ("intra_op", "inter_op"):
        assert options.get_session_config_entry(f"session.{pool}.allow_spinning") == spinning


def test_a_guarded_model_computes_its_guard_with_every_batch(
    tmp_path, package_factory, settings_factory, images
) -> None:
    onnx_path, manifest = load_package(package_factory(tmp_path / "pkg", guard=True))
    runner = ModelRunner(create_session(onnx_path, settings_factory(tmp_path)), manifest)
    assert runner.output_names == ["probabilities", "feature_map", "ood_score", "ood_cues"]
    assert runner.output_datatypes["ood_score"] == "FP32"
    results = runner.run_batch([images(1, seed=1), images(3, seed=2)])
    assert [r["ood_score"].shape for r in results] == [(1,), (3,)]
    assert [r["ood_cues"].shape for r in results] == [(1, 2), (3, 2)]
    runner.warm_up([1, 4])  # guard outputs are checked finite like the others
