"""Find or build the models the benchmark runs: the served ONNX package with its
out-of-distribution guard, and the same package without it.

Prefers what the pipeline wrote (``artifacts/package/``, guarded, with the ``artifacts/export/``
it was made from). Without them it builds the project's
MobileNetV2 (4 classes, 128 px, alpha 0.35) untrained, exports it with the training package and
gives it the bench's guard (``guarded_package``): untrained weights and a guard fitted on
synthetic slices compute exactly as much as trained ones, which is all a benchmark needs.

``--reference`` builds, the same way, the size of model the serving targets were set with: a
MobileNetV2 at alpha 1.0 and 224 px (~6x the arithmetic of ours), so the service's ratios can be
read against those targets as they were set. Run as a script: prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import guarded_package

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
IMAGE_SIZE = 128
ALPHA = 0.35
REFERENCE_IMAGE_SIZE = 224
REFERENCE_ALPHA = 1.0
REFERENCE_NAME = "reference-mobilenetv2"
SERVED_DIR = Path("models") / "1"
"""Inside the work directory: the package served first (the guarded one when there is a guard)."""
PLAIN_DIR = Path("plain") / "1"
"""Inside the work directory: the same model without the guard."""


def describe(image_size: int, alpha: float | None, origin: str) -> str:
    """What a table's figures are for, e.g. ``MobileNetV2 alpha 0.35, 128 px (trained, ...)``."""
    width = f"alpha {alpha:g}, " if alpha is not None else ""
    return f"MobileNetV2 {width}{image_size} px ({origin})"


def prepare_reference(workdir: Path) -> dict[str, str]:
    """The peers' model, untrained: an ONNX package from brainscan_training."""
    from brainscan_training.export import export_package
    from brainscan_training.model import build_model

    package_dir = workdir / "reference" / "1"
    package_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(len(CLASSES), REFERENCE_IMAGE_SIZE, REFERENCE_ALPHA)
    export_package(model, package_dir, CLASSES, name=REFERENCE_NAME)
    _drop_manifest_version(package_dir / "manifest.json")
    how = "untrained, brainscan_training.model.build_model + export.export_package"
    return {
        "package_dir": str(package_dir),
        "onnx_origin": how,
        "model": describe(
            REFERENCE_IMAGE_SIZE, REFERENCE_ALPHA, "reference: the size the serving targets assume"
        ),
    }


def prepare_given(package: Path | None, plain: Path | None, workdir: Path) -> dict[str, str]:
    """Given packages (``model.onnx`` + ``manifest.json``), each served as version 1.

    A guarded ``package`` with a ``plain`` one beside it: the guard's cost is measured too.
    ``plain`` alone is served with the bench's guard (``guarded_package``) against itself.
    """
    info: dict[str, str] = {}
    if plain is not None:
        _copy_package(plain, workdir / PLAIN_DIR)
        info["plain_origin"] = str(plain)
    if package is not None:
        problem = servable_problem(package)
        if problem:
            raise SystemExit(f"{package}: the inference service would refuse it: {problem}")
        _copy_package(package, workdir / SERVED_DIR)
        info["onnx_origin"] = str(package)
        if _has_guard(workdir / SERVED_DIR):
            info["guard_origin"] = str(package)
    else:
        guarded_package.add_guard(workdir / PLAIN_DIR, workdir / SERVED_DIR)
        info["onnx_origin"] = f"{plain} + the bench's guard"
        info["guard_origin"] = guarded_package.ORIGIN
    info["package_dir"] = str(workdir / SERVED_DIR)
    if "guard_origin" in info and plain is not None:
        info["plain_package_dir"] = str(workdir / PLAIN_DIR)
    manifest = json.loads((workdir / SERVED_DIR / "manifest.json").read_text())
    size = f"{manifest['input']['height']}×{manifest['input']['width']} px"
    info["model"] = f"{manifest['name']}, {size} (package {package or plain})"
    return info


def prepare(artifacts: Path, workdir: Path) -> dict[str, str]:
    """The pipeline's packages where it wrote them, the rest built untrained.

    Served: the guarded package (``package/``) when the pipeline wrote it together with the
    plain one it was made from (``export/``); otherwise the plain package with the bench's guard.
    The plain package is served beside it, for the guard's cost.
    """
    export_dir = artifacts / "export"
    guarded_dir = artifacts / "package"
    workdir.mkdir(parents=True, exist_ok=True)
    info: dict[str, str] = {}

    if _is_package(export_dir):
        _copy_package(export_dir, workdir / PLAIN_DIR)
        info["plain_origin"] = str(export_dir)
    else:
        model, how = _build_untrained()
        (workdir / PLAIN_DIR).mkdir(parents=True, exist_ok=True)
        _export(model, workdir / PLAIN_DIR)
        info["plain_origin"] = f"untrained, {how}"

    # The pipeline's guarded package only with the plain one it was made from: against an
    # untrained plain model it would compare two models, not a model with and without a guard.
    pipeline_pair = info["plain_origin"] == str(export_dir) and _has_guard(guarded_dir)
    problem = servable_problem(guarded_dir) if pipeline_pair else None
    if pipeline_pair and not problem:
        _copy_package(guarded_dir, workdir / SERVED_DIR)
        info["onnx_origin"] = info["guard_origin"] = str(guarded_dir)
    elif _can_fit_guard():
        guarded_package.add_guard(workdir / PLAIN_DIR, workdir / SERVED_DIR)
        info["onnx_origin"] = info["plain_origin"]
        info["guard_origin"] = guarded_package.ORIGIN
        if problem:  # e.g. a package from before a change of the manifest's ood section
            stale = f"{guarded_dir} is refused by this tree's package check ({problem}), so "
            info["guard_origin"] = stale + info["guard_origin"]
    else:  # a tree without the guard's code: the plain package is served alone
        info["onnx_origin"] = info["plain_origin"]
    if "guard_origin" in info:
        info["package_dir"] = str(workdir / SERVED_DIR)
        info["plain_package_dir"] = str(workdir / PLAIN_DIR)
    else:
        info["package_dir"] = str(workdir / PLAIN_DIR)
    info["model"] = _describe_package(Path(info["package_dir"]), info["onnx_origin"])
    return info


def servable_problem(directory: Path) -> str | None:
    """Why the inference service would refuse the package in ``directory`` (None: it would not)."""
    from brainscan_manifest.verify import PackageError, load_package, verify_package

    try:
        verify_package(*load_package(directory))
    except PackageError as exc:
        return str(exc)
    return None


def _is_package(directory: Path) -> bool:
    return (directory / "model.onnx").is_file() and (directory / "manifest.json").is_file()


def _has_guard(directory: Path) -> bool:
    if not _is_package(directory):
        return False
    return json.loads((directory / "manifest.json").read_text()).get("ood") is not None


def _can_fit_guard() -> bool:
    try:
        import brainscan_training.ood.build  # noqa: F401
    except ImportError:
        return False
    return True


def _copy_package(source: Path, package_dir: Path) -> None:
    package_dir.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "manifest.json"):
        shutil.copy(source / name, package_dir / name)
    _drop_manifest_version(package_dir / "manifest.json")


def _describe_package(package_dir: Path, origin: str) -> str:
    # The pipeline's manifest records its params (model.alpha); a bench-built one is ALPHA.
    manifest = json.loads((package_dir / "manifest.json").read_text())
    params = (manifest.get("lineage") or {}).get("params") or {}
    untrained = origin.startswith("untrained")
    alpha = ALPHA if untrained else params.get("model.alpha")
    how = "untrained, built by the bench" if untrained else f"trained, {origin}"
    return describe(manifest["input"]["height"], alpha, f"the project's model; {how}")


def _drop_manifest_version(path: Path) -> None:
    # The bench serves the package as version "1" of a versioned directory.
    manifest = json.loads(path.read_text())
    manifest["version"] = None
    path.write_text(json.dumps(manifest, indent=2))


def _build_untrained():
    try:
        from brainscan_training.model import build_model
    except ImportError:
        return _fallback_model(), "built by the bench (keras.applications + tf2onnx)"
    return build_model(len(CLASSES), IMAGE_SIZE, ALPHA), "brainscan_training.model.build_model"


def _export(model, package_dir: Path) -> None:
    try:
        from brainscan_training.export import export_package
    except ImportError:
        _fallback_export(model, package_dir)
        return
    export_package(model, package_dir, CLASSES)
    _drop_manifest_version(package_dir / "manifest.json")


def _fallback_model():
    """The same architecture as the training package, for a tree that does not have it yet."""
    import keras
    from keras import layers

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    scaled = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    backbone = keras.applications.MobileNetV2(
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), alpha=ALPHA, include_top=False, weights=None
    )
    pooled = layers.GlobalAveragePooling2D()(backbone(scaled))
    outputs = layers.Dense(len(CLASSES), activation="softmax", name="probabilities")(pooled)
    return keras.Model(inputs, outputs)


def _fallback_export(model, package_dir: Path) -> None:
    """tf2onnx export with a Cast so the input is uint8, plus a manifest (no activation map)."""
    import onnx
    import tensorflow as tf
    import tf2onnx
    from brainscan_manifest import Manifest
    from brainscan_manifest.verify import sha256_file
    from onnx import TensorProto, helper

    signature = (tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 3), tf.float32, name="pixels"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
    graph = proto.graph
    graph.output[0].name = _rename(graph, graph.output[0].name, "probabilities")
    graph.node.insert(0, helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT))
    graph.input[0].name = "image"
    graph.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    onnx.checker.check_model(proto)
    onnx.save(proto, str(package_dir / "model.onnx"))
    Manifest.model_validate(
        {
            "name": "brainscan-mobilenetv2",
            "classes": CLASSES,
            "input": {"name": "image", "height": IMAGE_SIZE, "width": IMAGE_SIZE},
            "outputs": {"probabilities": "probabilities"},
            "onnx_sha256": sha256_file(package_dir / "model.onnx"),
        }
    ).save(package_dir / "manifest.json")


def _rename(graph, old: str, new: str) -> str:
    for node in graph.node:
        node.output[:] = [new if o == old else o for o in node.output]
    return new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--artifacts", type=Path, required=True, help="the pipeline's output (artifacts/)"
    )
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--reference", action="store_true", help="MobileNetV2 a1.0 224 px")
    parser.add_argument("--package", type=Path, help="this model package instead (no Keras)")
    parser.add_argument("--plain-package", type=Path, help="the same model without its guard")
    args = parser.parse_args()
    if args.reference and (args.package or args.plain_package):
        parser.error("--reference and --package/--plain-package name different models")
    if args.reference:
        info = prepare_reference(args.workdir)
    elif args.package is not None or args.plain_package is not None:
        info = prepare_given(args.package, args.plain_package, args.workdir)
    else:
        info = prepare(args.artifacts, args.workdir)
    sys.stdout.write(json.dumps(info) + "\n")  # the result, for run.py


if __name__ == "__main__":
    main()
