"""Find or build the model the benchmark runs: an ONNX package and the same model in Keras.

Prefers what the pipeline wrote (``artifacts/export/`` and ``artifacts/train/model.keras``).
Without them it builds the project's MobileNetV2 (4 classes, 128 px, alpha 0.35) untrained and
exports it with the training package: untrained weights compute exactly as much as trained ones,
which is all a throughput benchmark needs.

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

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
IMAGE_SIZE = 128
ALPHA = 0.35
REFERENCE_IMAGE_SIZE = 224
REFERENCE_ALPHA = 1.0
REFERENCE_NAME = "reference-mobilenetv2"


def describe(image_size: int, alpha: float | None, origin: str) -> str:
    """What a table's figures are for, e.g. ``MobileNetV2 alpha 0.35, 128 px (trained, ...)``."""
    width = f"alpha {alpha:g}, " if alpha is not None else ""
    return f"MobileNetV2 {width}{image_size} px ({origin})"


def prepare_reference(workdir: Path) -> dict[str, str]:
    """The peers' model, untrained: ONNX package + Keras file, both from brainscan_training."""
    from brainscan_training.export import export_package
    from brainscan_training.model import build_model

    package_dir = workdir / "reference" / "1"
    package_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(len(CLASSES), REFERENCE_IMAGE_SIZE, REFERENCE_ALPHA)
    keras_file = workdir / "reference.keras"
    model.save(keras_file)
    export_package(model, package_dir, CLASSES, name=REFERENCE_NAME)
    _drop_manifest_version(package_dir / "manifest.json")
    how = "untrained, brainscan_training.model.build_model + export.export_package"
    return {
        "package_dir": str(package_dir),
        "keras_file": str(keras_file),
        "onnx_origin": how,
        "keras_origin": how,
        "model": describe(
            REFERENCE_IMAGE_SIZE, REFERENCE_ALPHA, "reference: the size the serving targets assume"
        ),
    }


def prepare_given(package: Path, workdir: Path) -> dict[str, str]:
    """Any model package (``model.onnx`` + ``manifest.json``), served as version 1; no Keras."""
    package_dir = workdir / "models" / "1"
    package_dir.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "manifest.json"):
        shutil.copy(package / name, package_dir / name)
    _drop_manifest_version(package_dir / "manifest.json")
    manifest = json.loads((package_dir / "manifest.json").read_text())
    spec = manifest["input"]
    return {
        "package_dir": str(package_dir),
        "onnx_origin": str(package),
        "keras_origin": "none",
        "model": f"{manifest['name']}, {spec['height']}×{spec['width']} px (package {package})",
    }


def prepare(repo: Path, workdir: Path) -> dict[str, str]:
    """Return the package directory, the Keras file, where each came from and the model."""
    package_dir = workdir / "models" / "1"
    package_dir.mkdir(parents=True, exist_ok=True)
    export_dir = repo / "artifacts" / "export"
    keras_file = repo / "artifacts" / "train" / "model.keras"
    info: dict[str, str] = {}

    if (export_dir / "model.onnx").is_file() and (export_dir / "manifest.json").is_file():
        for name in ("model.onnx", "manifest.json"):
            shutil.copy(export_dir / name, package_dir / name)
        _drop_manifest_version(package_dir / "manifest.json")
        info["onnx_origin"] = str(export_dir)
    if keras_file.is_file():
        info["keras_file"] = str(keras_file)
        info["keras_origin"] = str(keras_file)

    if "onnx_origin" not in info or "keras_file" not in info:
        model, how = _build_untrained()
        if "keras_file" not in info:
            built = workdir / "model.keras"
            model.save(built)
            info["keras_file"] = str(built)
            info["keras_origin"] = f"untrained, {how}"
        if "onnx_origin" not in info:
            _export(model, package_dir)
            info["onnx_origin"] = f"untrained, {how}"
    info["package_dir"] = str(package_dir)
    info["model"] = _describe_package(package_dir, info["onnx_origin"])
    return info


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
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--reference", action="store_true", help="MobileNetV2 a1.0 224 px")
    model.add_argument("--package", type=Path, help="this model package instead (no Keras)")
    args = parser.parse_args()
    if args.reference:
        info = prepare_reference(args.workdir)
    elif args.package is not None:
        info = prepare_given(args.package, args.workdir)
    else:
        info = prepare(args.repo, args.workdir)
    sys.stdout.write(json.dumps(info) + "\n")  # the result, for run.py


if __name__ == "__main__":
    main()
