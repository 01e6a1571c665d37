"""The out-of-distribution guard: its ONNX nodes compute what numpy computes, fitting meets its
false-alarm rate on held-out images, and a package whose reference was tampered with is refused."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from brainscan_manifest import InputSpec, Manifest, OutputSpec
from brainscan_manifest.guard_fit import ledoit_wolf, run_graph
from brainscan_manifest.guard_graph import (
    INPUT_VIEW,
    CueFeatures,
    Pooling,
    add_feature_outputs,
    add_input_view,
    attach_network,
)
from brainscan_manifest.ood import OOD_DIGEST_KEY, Histogram, ood_digest
from brainscan_manifest.verify import PackageError, sha256_file, verify_package
from brainscan_testsupport.guard import guarded_model
from brainscan_testsupport.onnx_models import brightness_model
from onnx import TensorProto, helper

SIZE = 8


def manifest_for(path, **update) -> Manifest:
    return Manifest(
        name="m",
        classes=["a", "b", "c", "d"],
        input=InputSpec(name="image", height=SIZE, width=SIZE),
        outputs=OutputSpec(probabilities="probabilities"),
        onnx_sha256=sha256_file(path) if path else "0" * 64,
        **update,
    )


def mri_like(rng, count):
    """Grey images: a bright disc of varying size and brightness on black (the "training" set)."""
    rows, cols = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    images = []
    for _ in range(count):
        radius = rng.uniform(2.0, 3.5)
        level = rng.uniform(120, 220)
        grey = np.where(np.hypot(rows, cols) < radius, level, 10) + rng.normal(0, 4, (SIZE, SIZE))
        images.append(np.repeat(np.clip(grey, 0, 255)[..., None], 3, axis=2))
    return np.stack(images).astype(np.uint8)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    manifest = manifest_for(None)
    fit = guarded_model(
        brightness_model(size=SIZE), manifest, mri_like(rng, 400), false_alarm_rate=0.05
    )
    return manifest, fit


def save_package(tmp_path, fit, manifest):
    path = tmp_path / "model.onnx"
    onnx.save(fit.model, str(path))
    return path, manifest.model_copy(update={"ood": fit.spec, "onnx_sha256": sha256_file(path)})


def test_the_view_is_the_input_averaged_over_two_by_two():
    manifest = manifest_for(None)
    model = add_input_view(brightness_model(size=SIZE), manifest.input)
    model.graph.output.append(helper.make_tensor_value_info(INPUT_VIEW, TensorProto.FLOAT, None))
    images = np.random.default_rng(1).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    (view,) = run_graph(model, "image", images, [INPUT_VIEW]).values()
    expected = images.astype(np.float32).reshape(3, 4, 2, 4, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(view, expected.transpose(0, 3, 1, 2), rtol=1e-6)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_pooled_statistics_match_numpy(layout):
    """Mean, standard deviation and grid of a 4-D tensor, in either layout, grey and chroma."""
    images = np.random.default_rng(2).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    model = brightness_model(size=SIZE)
    tensor = "image"
    if layout == "NCHW":  # a planar float copy of the input to pool
        model.graph.node.append(helper.make_node("Cast", ["image"], ["as_float"], to=1))
        model.graph.node.append(
            helper.make_node("Transpose", ["as_float"], ["planar"], perm=[0, 3, 1, 2])
        )
        tensor = "planar"
    cues = [
        CueFeatures("stats", (Pooling(tensor, layout, std=True),)),
        CueFeatures("grid", (Pooling(tensor, layout, grid=2, grey=True, chroma=True),)),
    ]
    out = run_graph(add_feature_outputs(model, cues), "image", images, [c.output for c in cues])
    pixels = images.astype(np.float64)
    expected_stats = np.concatenate([pixels.mean(axis=(1, 2)), pixels.std(axis=(1, 2))], axis=1)
    np.testing.assert_allclose(out["ood_features.stats"], expected_stats, rtol=1e-4, atol=1e-2)
    grey = pixels.mean(axis=3)
    chroma = (pixels.max(axis=3) - pixels.min(axis=3)).mean(axis=(1, 2))
    grid = grey.reshape(4, 2, 4, 2, 4).mean(axis=(2, 4)).reshape(4, -1)
    expected_grid = np.concatenate([chroma[:, None], grid], axis=1)
    np.testing.assert_allclose(out["ood_features.grid"], expected_grid, rtol=1e-5, atol=1e-3)


def test_confidence_and_surprise_are_minus_log_probabilities():
    images = np.random.default_rng(3).integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    model = brightness_model(size=SIZE, scale=0.05)
    cues = [
        CueFeatures("confidence", confidence_of="probabilities"),
        CueFeatures("surprise", surprise_of=("probabilities", 2)),
    ]
    out = run_graph(
        add_feature_outputs(model, cues),
        "image",
        images,
        ["probabilities", *(c.output for c in cues)],
    )
    probabilities = out["probabilities"]
    np.testing.assert_allclose(
        out["ood_features.confidence"][:, 0], -np.log(probabilities.max(axis=1)), rtol=1e-5
    )
    np.testing.assert_allclose(
        out["ood_features.surprise"][:, 0], -np.log(probabilities[:, 2]), rtol=1e-5
    )


def test_an_attached_network_reads_the_grey_view():
    """attach_network wires a second graph to the grey input view: here one that averages it."""
    manifest = manifest_for(None)
    net = helper.make_model(
        helper.make_graph(
            [helper.make_node("ReduceMean", ["pixels"], ["mean"], axes=[1, 2], keepdims=0)],
            "net",
            [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 4, 4])],
            [helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["n"])],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model = add_input_view(brightness_model(size=SIZE, opset=17), manifest.input)
    with pytest.raises(ValueError, match="opset"):
        attach_network(
            add_input_view(brightness_model(size=SIZE), manifest.input), net, manifest.input, "net"
        )
    model = attach_network(model, net, manifest.input, "net")
    model.graph.output.append(helper.make_tensor_value_info("net/mean", TensorProto.FLOAT, ["n"]))
    images = np.random.default_rng(4).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    (mean,) = run_graph(model, "image", images, ["net/mean"]).values()
    np.testing.assert_allclose(mean, images.astype(np.float64).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_ledoit_wolf_is_a_well_conditioned_covariance():
    samples = np.random.default_rng(5).normal(size=(10, 30))  # fewer samples than dimensions
    covariance = ledoit_wolf(samples - samples.mean(axis=0))
    assert np.allclose(covariance, covariance.T)
    assert np.linalg.eigvalsh(covariance).min() > 0


def test_calibration_meets_its_false_alarm_rate_on_held_out_images(fitted):
    _manifest, fit = fitted
    held_out = mri_like(np.random.default_rng(99), 1000)
    scores = run_graph(fit.model, "image", held_out, ["ood_score"])["ood_score"]
    flagged = np.mean(scores > fit.spec.threshold)
    # 5 % target; 200 calibration images put the realised rate within a few points of it.
    assert 0.01 <= flagged <= 0.10, flagged


def test_images_unlike_the_training_ones_score_above_the_threshold(fitted):
    _manifest, fit = fitted
    blank = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    noise = np.random.default_rng(6).integers(0, 256, (1, SIZE, SIZE, 3), dtype=np.uint8)
    colour = mri_like(np.random.default_rng(7), 1)
    colour[..., 0] = 0  # a cyan disc: an MRI is never coloured
    out = run_graph(
        fit.model, "image", np.concatenate([blank, noise, colour]), ["ood_score", "ood_cues"]
    )
    assert np.all(out["ood_score"] > fit.spec.threshold), out["ood_score"]
    assert out["ood_cues"].shape == (3, 2)
    np.testing.assert_allclose(out["ood_score"], out["ood_cues"].max(axis=1), rtol=1e-6)


def test_the_reference_describes_the_calibration_images(fitted):
    manifest, fit = fitted
    reference = fit.spec.reference
    assert reference.images == 200 and set(reference.class_mix) == set(manifest.classes)
    assert abs(sum(reference.class_mix.values()) - 1) < 1e-6
    for histogram in (reference.confidence, reference.intensity, reference.ood_score):
        assert abs(sum(histogram.shares) - 1) < 1e-6


def test_a_guarded_package_verifies_and_round_trips(tmp_path, fitted):
    manifest, fit = fitted
    path, guarded = save_package(tmp_path, fit, manifest)
    guarded.save(tmp_path / "manifest.json")
    assert Manifest.load(tmp_path / "manifest.json") == guarded
    assert verify_package(path, guarded).manifest.ood == fit.spec
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert metadata[OOD_DIGEST_KEY] == ood_digest(fit.spec)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda spec: spec.model_copy(update={"threshold": spec.threshold * 10}),
        lambda spec: spec.model_copy(update={"false_alarm_rate": 0.3}),
        lambda spec: spec.model_copy(
            update={
                "reference": spec.reference.model_copy(
                    update={"class_mix": {"a": 0.7, "b": 0.1, "c": 0.1, "d": 0.1}}
                )
            }
        ),
    ],
    ids=["threshold raised", "rate edited", "class mix edited"],
)
def test_a_tampered_reference_is_refused(tmp_path, fitted, tamper):
    manifest, fit = fitted
    path, guarded = save_package(tmp_path, fit, manifest)
    tampered = guarded.model_copy(update={"ood": tamper(guarded.ood)})
    with pytest.raises(PackageError, match="does not match the one the model was built with"):
        verify_package(path, tampered)


def test_removing_the_reference_does_not_silence_the_guard(tmp_path, fitted):
    manifest, fit = fitted
    path, guarded = save_package(tmp_path, fit, manifest)
    with pytest.raises(PackageError, match="built with an out-of-distribution guard"):
        verify_package(path, guarded.model_copy(update={"ood": None}))


def test_a_reference_on_a_model_without_guard_is_refused(tmp_path, fitted):
    _manifest, fit = fitted
    path = tmp_path / "plain.onnx"
    onnx.save(brightness_model(size=SIZE), str(path))
    borrowed = manifest_for(path, ood=fit.spec)
    with pytest.raises(PackageError, match="carries no guard digest"):
        verify_package(path, borrowed)


def test_histogram_bins_put_outside_values_in_the_end_bins():
    histogram = Histogram.of(np.array([0.1, 0.5, 0.9]), [0.0, 0.4, 0.8, 1.0])
    assert histogram.shares == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert list(histogram.bins(np.array([-5.0, 0.39, 0.4, 7.0]))) == [0, 0, 1, 2]
    with pytest.raises(ValueError, match="edges must increase"):
        Histogram(edges=[0.0, 0.0, 1.0], shares=[0.5, 0.5])


@pytest.mark.parametrize("opset", [17, 18])
def test_the_guard_is_built_in_the_opset_of_the_model(opset):
    """Reductions take their axes as an attribute before opset 18 and as an input from it."""
    rng = np.random.default_rng(8)
    manifest = manifest_for(None)
    model = brightness_model(size=SIZE, opset=opset)
    fit = guarded_model(model, manifest, mri_like(rng, 60))
    assert fit.model.opset_import[0].version == opset
    session = ort.InferenceSession(
        fit.model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (score,) = session.run(["ood_score"], {"image": mri_like(rng, 2)})
    assert score.shape == (2,) and np.all(np.isfinite(score))


def test_the_proportions_range_covers_the_training_sizes_with_a_tolerance():
    from brainscan_manifest.ood import AspectRange

    bounds = AspectRange.of([(256, 256), (256, 225), (225, 256)], tolerance=1.25)
    assert bounds.fits(256, 256) and bounds.fits(300, 256)  # within 25 % of the range
    assert not bounds.fits(256, 112) and not bounds.fits(112, 256)
    with pytest.raises(ValueError, match="high must be >= low"):
        AspectRange(low=2.0, high=1.0)
