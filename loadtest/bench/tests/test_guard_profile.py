"""The guard's profile: each node put in its part of the guard, and kernel time per image."""

from __future__ import annotations

import onnx


def test_every_guard_node_is_put_in_its_part_and_each_cue_gets_its_own_features(
    bench, tiny_guarded_package
):
    guard_profile = bench("guard_profile")
    model = onnx.load(str(tiny_guarded_package / "model.onnx"))
    parts = guard_profile.node_parts(model)
    by_part: dict[str, set[str]] = {}
    for node in model.graph.node:
        name = node.name or node.output[0]
        by_part.setdefault(parts[name], set()).add(name)
    assert all(n.startswith("ood_input/") for n in by_part[guard_profile.PREFIXES["ood_input/"]])
    scores = by_part[guard_profile.PREFIXES["ood_guard/"]]
    assert all(n.startswith(("ood_guard/", "ood_score", "ood_cues")) for n in scores)
    pixels = by_part["guard: features of cue pixels"]
    confidence = by_part["guard: features of cue confidence"]
    assert pixels and confidence and not pixels & confidence
    assert all(n.startswith(("ood/", "ood_features.")) for n in pixels | confidence)
    # Every ood/ node belongs to a cue; nothing of the classifier does.
    assert {parts[n.name] for n in model.graph.node if n.name.startswith("ood/")} == {
        "guard: features of cue pixels",
        "guard: features of cue confidence",
    }
    assert not any(n.startswith("ood") for n in by_part.get(guard_profile.CLASSIFIER, ()))
    # onnxruntime names a fused node after its output, in the blocked layout with "_nchwc".
    node = next(n for n in model.graph.node if n.name.startswith("ood/"))
    assert guard_profile.part_of(node.output[0] + "_nchwc", parts) == parts[node.name]
    assert guard_profile.part_of("ReorderOutput_token_3", parts) == guard_profile.REORDER
    assert guard_profile.part_of("Transpose_token_9", parts) == guard_profile.OTHER


def test_kernel_time_is_summed_per_part_and_divided_by_calls_and_images(bench):
    guard_profile = bench("guard_profile")
    events = [
        {"name": "model_run", "dur": 100, "ts": 1},
        {"name": "model_run", "dur": 300, "ts": 2},
        {"cat": "Node", "name": "conv_kernel_time", "dur": 40},
        {"cat": "Node", "name": "conv_kernel_time", "dur": 60},
        {"cat": "Node", "name": "ood/mean_3_kernel_time", "dur": 8},
        {"cat": "Node", "name": "ood/mean_3_fence_before", "dur": 1000},  # not a kernel
        {"cat": "Node", "name": "Transpose_token_7_kernel_time", "dur": 4},
    ]
    parts = {"conv": guard_profile.CLASSIFIER, "ood/mean_3": "guard: features of cue pixels"}
    summary = guard_profile.summarise(events, parts, images=2)
    assert summary["call_us"] == 100.0  # median call 200 us for 2 images
    assert summary["kernel_us"] == {
        guard_profile.CLASSIFIER: 25.0,
        "guard: features of cue pixels": 2.0,
        guard_profile.OTHER: 1.0,
    }
    assert summary["nodes"] == {
        guard_profile.CLASSIFIER: 1,
        "guard: features of cue pixels": 1,
        guard_profile.OTHER: 1,
    }
