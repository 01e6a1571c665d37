"""Where the guard's time goes inside onnxruntime: both graphs profiled node by node.

The guarded and the plain package run the same images, one after the other, with onnxruntime's
profiler on and the service's session options. Each node of the guarded graph is put in the
part of the guard it belongs to, by the names guard_graph gives them (``ood_input/`` the input view,
``ood/`` a cue's pooled features, traced back from its ``ood_features.<cue>`` output,
``ood_guard/`` whitening and scores, ``ood_appearance*`` the appearance network), the rest in
the classifier. Prints per part its nodes and kernel time per image, and per graph the whole
call against the sum of its kernels (the rest is onnxruntime's own work per node: scheduling,
allocation). Run as a script: ``guard_profile.py --package G --plain-package P``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx

CLASSIFIER = "classifier"
REORDER = "layout conversions inserted by onnxruntime (NCHWc ↔ NCHW)"
OTHER = "other nodes inserted by onnxruntime"
PREFIXES = {
    "ood_input/": "guard: input view (transpose, cast, 2×2 average)",
    "ood_appearance_input/": "guard: appearance network's grey input",
    "ood_appearance/": "guard: appearance network",
    "ood_guard/": "guard: whitening and scores",
    "ood_score": "guard: whitening and scores",  # the Identity nodes naming its outputs
    "ood_cues": "guard: whitening and scores",
}
CUE_FEATURES = "guard: features of cue {}"
WARM_UP = 20


def node_parts(model: onnx.ModelProto) -> dict[str, str]:
    """The part of the guard (or the classifier) of every node of the graph, by node name (an
    unnamed node: by its first output) and by the names of its outputs (onnxruntime names a
    fused node after its output)."""
    producer = {out: node for node in model.graph.node for out in node.output}
    part_by_node: dict[int, str] = {}
    for node in model.graph.node:
        prefix = next((p for p in PREFIXES if _key(node).startswith(p)), None)
        part_by_node[id(node)] = PREFIXES[prefix] if prefix else CLASSIFIER
    # A cue's pooled features: its ``ood_features.<cue>`` output and its ancestors in ``ood/``.
    for node in model.graph.node:
        cue = next((o for o in node.output if o.startswith("ood_features.")), None)
        if cue is None:
            continue
        part = CUE_FEATURES.format(cue.removeprefix("ood_features."))
        part_by_node[id(node)] = part
        stack = [producer[i] for i in node.input if i in producer]
        while stack:
            current = stack.pop()
            if not current.name.startswith("ood/") or part_by_node[id(current)] == part:
                continue
            part_by_node[id(current)] = part
            stack += [producer[i] for i in current.input if i in producer]
    parts: dict[str, str] = {}
    for node in model.graph.node:
        parts[_key(node)] = part_by_node[id(node)]
        for out in node.output:
            parts.setdefault(out, part_by_node[id(node)])
    return parts


def _key(node: onnx.NodeProto) -> str:
    return node.name or node.output[0]


def part_of(profiled_node: str, parts: dict[str, str]) -> str:
    """The part of a node as onnxruntime's profile names it, after its graph optimisations."""
    if profiled_node in parts:
        return parts[profiled_node]
    fused = profiled_node.removesuffix("_nchwc")  # a fused node in the blocked layout
    if fused in parts:
        return parts[fused]
    if profiled_node.startswith(("ReorderOutput", "ReorderInput")):
        return REORDER
    return OTHER


def profile(onnx_path: Path, images: np.ndarray, input_name: str, runs: int, workdir: Path):
    """onnxruntime's profile events of ``runs`` calls on ``images``, after 20 not counted,
    every output computed (as the service does)."""
    import onnxruntime as ort
    from brainscan_inference.session import create_session
    from brainscan_inference.settings import InferenceSettings

    # The service's session options, with the profiler on.
    options = create_session(onnx_path, InferenceSettings()).get_session_options()
    options.enable_profiling = True
    options.profile_file_prefix = str(workdir / onnx_path.parent.name)
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    for _ in range(WARM_UP + runs):
        session.run(outputs, {input_name: images})
    events = json.loads(Path(session.end_profiling()).read_text())
    counted = [e for e in events if e.get("name") == "model_run"][WARM_UP]["ts"]
    return [e for e in events if e.get("ts", 0) >= counted]


def call_cpu_us(onnx_path: Path, images: np.ndarray, input_name: str, runs: int) -> float:
    """CPU microseconds per image of a call with the profiler off (the service's session)."""
    from brainscan_inference.session import create_session
    from brainscan_inference.settings import InferenceSettings

    session = create_session(onnx_path, InferenceSettings())
    outputs = [o.name for o in session.get_outputs()]
    for _ in range(WARM_UP):
        session.run(outputs, {input_name: images})
    started = time.process_time()
    for _ in range(runs):
        session.run(outputs, {input_name: images})
    return 1e6 * (time.process_time() - started) / (runs * len(images))


def summarise(events: list[dict], parts: dict[str, str], images: int) -> dict:
    """Kernel microseconds per image by part, the calls' total and the nodes each part ran."""
    calls = [e["dur"] for e in events if e.get("name") == "model_run"]
    kernel: dict[str, float] = defaultdict(float)
    nodes: dict[str, set] = defaultdict(set)
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        name = event["name"].removesuffix("_kernel_time")
        part = part_of(name, parts)
        kernel[part] += event["dur"]
        nodes[part].add(name)
    per_image = len(calls) * images
    return {
        "call_us": statistics.median(calls) / images,
        "kernel_us": {part: total / per_image for part, total in kernel.items()},
        "nodes": {part: len(names) for part, names in nodes.items()},
    }


def table(guarded: dict, plain: dict) -> str:
    """A row per part: nodes run and kernel time per image in each graph, then the calls."""
    rows = [
        "| part | guarded: nodes | guarded: kernel µs per image | plain: nodes "
        "| plain: kernel µs per image | guarded − plain µs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    parts = sorted(
        set(guarded["kernel_us"]) | set(plain["kernel_us"]),
        key=lambda p: plain["kernel_us"].get(p, 0.0) - guarded["kernel_us"].get(p, 0.0),
    )
    for part in parts:
        g, u = guarded["kernel_us"].get(part, 0.0), plain["kernel_us"].get(part, 0.0)
        rows.append(
            f"| {part} | {guarded['nodes'].get(part, 0)} | {g:.1f} | "
            f"{plain['nodes'].get(part, 0)} | {u:.1f} | {g - u:+.1f} |"
        )
    kernels = [sum(s["kernel_us"].values()) for s in (guarded, plain)]
    calls = [s["call_us"] for s in (guarded, plain)]
    nodes = [sum(s["nodes"].values()) for s in (guarded, plain)]
    for label, (g, u) in (
        ("all kernels", kernels),
        ("whole call under the profiler (median)", calls),
        ("the rest: onnxruntime's own work per node, and the profiler's", (
            calls[0] - kernels[0], calls[1] - kernels[1])),
    ):  # fmt: skip
        count = f"{nodes[0]} | " if label == "all kernels" else "— | "
        plain_count = f"{nodes[1]} | " if label == "all kernels" else "— | "
        rows.append(f"| {label} | {count}{g:.1f} | {plain_count}{u:.1f} | {g - u:+.1f} |")
    g, u = guarded["cpu_us"], plain["cpu_us"]
    rows.append(
        f"| whole call, profiler off: CPU µs per image | — | {g:.1f} | — | {u:.1f} | "
        f"{g - u:+.1f} (× {g / u:.2f}) |"
    )
    return "\n".join(rows)


def main() -> None:
    from brainscan_manifest.verify import load_package

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--package", type=Path, required=True, help="the guarded package")
    parser.add_argument("--plain-package", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    onnx_path, manifest = load_package(args.package)
    plain_path, _ = load_package(args.plain_package)
    shape = manifest.input.shape(args.batch)
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    parts = {path: node_parts(onnx.load(str(path))) for path in (onnx_path, plain_path)}
    with tempfile.TemporaryDirectory(prefix="guard-profile-") as scratch:
        events = {
            path: profile(path, images, manifest.input.name, args.runs, Path(scratch))
            for path in (onnx_path, plain_path)
        }
    guarded, plain = (summarise(events[p], parts[p], args.batch) for p in (onnx_path, plain_path))
    for summary, path in ((guarded, onnx_path), (plain, plain_path)):
        summary["cpu_us"] = call_cpu_us(path, images, manifest.input.name, args.runs)
    sys.stdout.write(f"batch {args.batch}, {args.runs} calls each\n\n{table(guarded, plain)}\n")


if __name__ == "__main__":
    main()
