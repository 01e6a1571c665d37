"""The model slot: verify + load + warm + swap; refused packages leave the old model serving."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from brainscan_inference.errors import ModelNotFound, Unavailable
from brainscan_inference.metrics import InferenceMetrics
from brainscan_inference.model_slot import ModelSlot
from brainscan_inference.sources import ModelCandidate

pytestmark = pytest.mark.anyio


@pytest.fixture
def metrics() -> InferenceMetrics:
    return InferenceMetrics()


@pytest.fixture
def slot(tmp_path, settings_factory, metrics):
    return ModelSlot(settings_factory(tmp_path / "models"), metrics)


def candidate(directory: Path, version: str, **extra) -> ModelCandidate:
    return ModelCandidate(directory=directory, version=version, origin="test", **extra)


def count(metrics: InferenceMetrics, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "brainscan_inference_model_loads_total", {"model": "tiny", "outcome": outcome}
    )
    return value or 0.0


async def test_loads_a_package_and_serves_it(slot, tmp_path, package_factory, metrics) -> None:
    assert not slot.ready
    outcome = await slot.load(candidate(package_factory(tmp_path / "1"), "1"))
    assert outcome.state == "loaded"
    model = slot.resolve("tiny")
    assert model is slot.resolve("tiny", "1")
    assert model.manifest.version == "1"
    assert model.metadata()["inputs"] == [
        {"name": "image", "datatype": "UINT8", "shape": [-1, 8, 8, 3]}
    ]
    assert count(metrics, "loaded") == 1
    assert metrics.registry.get_sample_value("brainscan_inference_ready") == 1
    await slot.close()


async def test_resolve_says_404_for_other_names_and_versions(slot, tmp_path, package_factory):
    await slot.load(candidate(package_factory(tmp_path / "1"), "1"))
    with pytest.raises(ModelNotFound, match="serves 'tiny'"):
        slot.resolve("other")
    with pytest.raises(ModelNotFound, match="no version '7'") as caught:
        slot.resolve("tiny", "7")
    assert caught.value.code == "version_not_found"
    await slot.close()


async def test_resolve_before_any_model_is_503_or_404_for_a_wrong_configured_name(
    tmp_path, settings_factory, metrics
) -> None:
    slot = ModelSlot(settings_factory(tmp_path, model_name="brain"), metrics)
    with pytest.raises(Unavailable):
        slot.resolve("brain")
    with pytest.raises(ModelNotFound):
        slot.resolve("other")


async def test_the_same_package_again_is_unchanged(slot, tmp_path, package_factory) -> None:
    directory = package_factory(tmp_path / "1")
    await slot.load(candidate(directory, "1"))
    first = slot.current
    assert (await slot.load(candidate(directory, "1"))).state == "unchanged"
    assert slot.current is first
    await slot.close()


async def test_a_new_version_replaces_the_old_one(slot, tmp_path, package_factory, images):
    await slot.load(candidate(package_factory(tmp_path / "1"), "1"))
    old = slot.current
    assert (await slot.load(candidate(package_factory(tmp_path / "2", seed=5), "2"))).state == (
        "loaded"
    )
    assert slot.current.version == "2"
    await slot.close()
    assert old.batcher._closing  # the old model stopped taking work once the new one was in


def truncate(directory: Path) -> None:
    model = directory / "model.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])


def swap_onnx_for_another(directory: Path, other: Path) -> None:
    shutil.copy(other / "model.onnx", directory / "model.onnx")


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("truncated", "sha256 mismatch"),
        ("truncated_with_matching_hash", "ONNX checker failed"),
        ("wrong_output_count", "3 probability outputs"),
        ("registry_hash_mismatch", "registry says"),
        ("other_name", "expected 'tiny'"),
        ("manifest_version_differs", "manifest says version"),
        ("missing_manifest", "manifest missing"),
    ],
)
async def test_a_bad_package_is_refused_and_the_old_model_keeps_serving(
    tmp_path, settings_factory, package_factory, metrics, images, breakage, reason
) -> None:
    slot = ModelSlot(settings_factory(tmp_path, model_name="tiny"), metrics)
    await slot.load(candidate(package_factory(tmp_path / "1"), "1"))
    serving = slot.current
    bad = tmp_path / "2"
    extra = {}
    if breakage == "truncated":
        truncate(package_factory(bad, seed=3))
    elif breakage == "truncated_with_matching_hash":
        package_factory(bad, seed=3)
        truncate(bad)
        from brainscan_manifest.verify import sha256_file

        manifest = json.loads((bad / "manifest.json").read_text())
        manifest["onnx_sha256"] = sha256_file(bad / "model.onnx")
        (bad / "manifest.json").write_text(json.dumps(manifest))
    elif breakage == "wrong_output_count":
        package_factory(bad, num_outputs=3)
    elif breakage == "registry_hash_mismatch":
        package_factory(bad, seed=3)
        extra["expected_sha256"] = "0" * 64
    elif breakage == "other_name":
        package_factory(bad, name="intruder")
    elif breakage == "manifest_version_differs":
        package_factory(bad, version="9")
    elif breakage == "missing_manifest":
        package_factory(bad)
        (bad / "manifest.json").unlink()

    outcome = await slot.load(candidate(bad, "2", **extra))

    assert outcome.state == "refused"
    assert reason in outcome.reason
    assert slot.current is serving
    result = await serving.batcher.submit(images(1), size=1)
    assert result["probabilities"].shape == (1, 4)
    assert count(metrics, "refused") == 1
    assert slot.last_outcome == outcome
    await slot.close()


async def test_results_do_not_depend_on_batch_neighbours(slot, tmp_path, package_factory, images):
    await slot.load(candidate(package_factory(tmp_path / "1"), "1"))
    model = slot.current
    one = await model.batcher.submit(images(1, seed=4), size=1)
    batch = await model.batcher.submit(images(3, seed=4), size=3)
    np.testing.assert_allclose(one["probabilities"][0], batch["probabilities"][0], rtol=1e-5)
    await slot.close()


async def test_concurrent_batches_on_several_workers_answer_as_one_at_a_time(
    tmp_path, settings_factory, metrics, package_factory, images
):
    slot = ModelSlot(settings_factory(tmp_path / "models", model_workers=2), metrics)
    await slot.load(candidate(package_factory(tmp_path / "1"), "1"))
    model = slot.current
    assert model.batcher.workers == 2
    inputs = [images(1 + i % 3, seed=i) for i in range(12)]
    together = await asyncio.gather(*(model.batcher.submit(x, size=len(x)) for x in inputs))
    for x, answer in zip(inputs, together, strict=True):
        alone = await model.batcher.submit(x, size=len(x))
        np.testing.assert_allclose(answer["probabilities"], alone["probabilities"], rtol=1e-5)
    await slot.close()


SYMBOLIC_FEATURES = ["N", "height", "width", "channels"]  # static checks cannot see a misfit


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("weights_rows", "5 channels"),
        ("feature_map_rank", "rank 3"),
    ],
)
async def test_a_package_whose_activation_maps_cannot_be_computed_is_refused_at_load(
    tmp_path, slot, package_factory, metrics, images, broken, reason
) -> None:
    await slot.load(candidate(package_factory(tmp_path / "1"), "1"))
    serving = slot.current
    options: dict = {"feature_map_shape": SYMBOLIC_FEATURES}
    if broken == "weights_rows":  # 6 rows of class weights for a 5-channel feature map
        options["cam_weights"] = np.ones((6, 4)).tolist()
    else:
        options["feature_map_rank"] = 3

    outcome = await slot.load(candidate(package_factory(tmp_path / "2", **options), "2"))

    assert outcome.state == "refused"
    assert "activation map" in outcome.reason and reason in outcome.reason
    assert slot.current is serving
    assert count(metrics, "refused") == 1
    await slot.close()


async def test_a_refused_package_falls_back_to_the_highest_version_that_loads(
    tmp_path, settings_factory, package_factory, metrics
) -> None:
    slot = ModelSlot(settings_factory(tmp_path, model_name="tiny"), metrics)
    good = candidate(package_factory(tmp_path / "2"), "2")
    also_broken = candidate(package_factory(tmp_path / "3", seed=1, num_outputs=3), "3")
    broken = ModelCandidate(
        directory=package_factory(tmp_path / "4", seed=2, num_outputs=3),
        version="4",
        origin="test",
        fallbacks=(also_broken, good),
    )
    outcome = await slot.load(broken)
    assert outcome.state == "refused" and "3 probability outputs" in outcome.reason
    assert outcome.fallback is not None and outcome.fallback.version == "2"
    assert outcome.fallback.state == "loaded"
    assert slot.current.version == "2"
    assert slot.last_outcome == outcome  # the index still tells about version 4
    assert count(metrics, "refused") == 2 and count(metrics, "loaded") == 1
    # Offered again unchanged: version 4 refused again, version 3 (same files as when it was
    # refused) skipped, version 2 stays without a reload.
    served = slot.current
    again = await slot.load(broken)
    assert again.state == "refused" and again.fallback.state == "unchanged"
    assert slot.current is served
    assert count(metrics, "refused") == 3
    await slot.close()


async def test_a_challenger_answers_only_when_asked_for_by_its_version(
    slot, tmp_path, settings_factory, metrics, package_factory
):
    slot.shadow = ModelSlot(settings_factory(tmp_path / "models"), metrics, shadow=True)
    await slot.load(candidate(package_factory(tmp_path / "1"), "1"))
    await slot.shadow.load(candidate(package_factory(tmp_path / "2", seed=5), "2"))
    assert slot.resolve("tiny").version == "1"
    assert slot.resolve("tiny", "2") is slot.shadow.current
    assert slot.challenger("tiny") is slot.shadow.current
    sample = metrics.registry.get_sample_value
    assert sample("brainscan_inference_challenger", {"model": "tiny", "version": "2"}) == 1
    assert sample("brainscan_inference_model_info", {"name": "tiny", "version": "1",
                  "sha256": slot.current.sha256}) == 1  # fmt: skip
    assert sample("brainscan_inference_model_bytes", {"role": "challenger"}) > 0

    await slot.shadow.unload()
    with pytest.raises(ModelNotFound, match="no version '2'"):
        slot.resolve("tiny", "2")
    with pytest.raises(ModelNotFound, match="no challenger"):
        slot.challenger("tiny")
    assert sample("brainscan_inference_challenger", {"model": "tiny", "version": "2"}) is None
    assert slot.ready and sample("brainscan_inference_ready") == 1  # the shadow never decides
    await slot.shadow.close()
    await slot.close()
