"""The local serving stack a load test runs against: a model package, inference and the gateway.

The trained model (artifacts/export) is served when it is there and passes every package check;
otherwise a small stand-in classifier is built with onnx.helper, with the trained model's
signature (uint8 NHWC 128x128 RGB in, 4 probabilities and a feature map out), so the gateway
decodes, resizes and thresholds exactly as it would for the real one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import onnx
from brainscan_localstack.processes import ManagedProcess, free_port
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_manifest.verify import PackageError, load_package, sha256_file, verify_package
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRAINED_MODEL = REPO / "artifacts" / "export"
MODEL_NAME = "brainscan-mobilenetv2"
CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
INPUT_SIZE = 128
FEATURES = 8
MAP_SIZE = 4


def _stand_in_model(seed: int) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """image -> per-pixel features -> 4x4 average pool (the feature map) -> mean -> dense."""
    rng = np.random.default_rng(seed)
    pixel_weights = rng.normal(0, 1, (3, FEATURES)).astype(np.float32)
    dense = rng.normal(0, 3, (FEATURES, len(CLASSES))).astype(np.float32)
    bias = rng.normal(0, 0.1, (len(CLASSES),)).astype(np.float32)
    pool = INPUT_SIZE // MAP_SIZE
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["pixels", "inv255"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "pixel_weights"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["features"]),
        helper.make_node("Transpose", ["features"], ["features_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node(
            "AveragePool",
            ["features_nchw"],
            ["pooled_nchw"],
            kernel_shape=[pool, pool],
            strides=[pool, pool],
        ),
        helper.make_node("Transpose", ["pooled_nchw"], ["feature_map"], perm=[0, 2, 3, 1]),
        helper.make_node("ReduceMean", ["feature_map"], ["pooled"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["pooled", "dense"], ["dense_out"]),
        helper.make_node("Add", ["dense_out", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "brainscan_stand_in",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.UINT8, ["N", INPUT_SIZE, INPUT_SIZE, 3]
            )
        ],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(CLASSES)]),
            helper.make_tensor_value_info(
                "feature_map", TensorProto.FLOAT, ["N", MAP_SIZE, MAP_SIZE, FEATURES]
            ),
        ],
        initializer=[
            numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255"),
            numpy_helper.from_array(pixel_weights, "pixel_weights"),
            numpy_helper.from_array(dense, "dense"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, dense, bias


def stand_in_package(directory: Path, *, seed: int = 0, name: str = MODEL_NAME) -> Path:
    """A valid model package (model.onnx + manifest.json) with the trained model's signature."""
    directory.mkdir(parents=True, exist_ok=True)
    model, dense, bias = _stand_in_model(seed)
    onnx.save(model, directory / MODEL_FILE)
    manifest = Manifest.model_validate(
        {
            "name": name,
            "description": "stand-in classifier for load and logging tests (not trained)",
            "classes": CLASSES,
            "input": {"name": "image", "height": INPUT_SIZE, "width": INPUT_SIZE},
            "outputs": {
                "probabilities": "probabilities",
                "activation_map": {
                    "feature_map": "feature_map",
                    "weights": dense.tolist(),
                    "bias": bias.tolist(),
                },
            },
            "default_threshold": 0.5,
            "onnx_sha256": sha256_file(directory / MODEL_FILE),
        }
    )
    manifest.save(directory / MANIFEST_FILE)
    return directory


def model_package(work_dir: Path, preferred: Path = TRAINED_MODEL) -> tuple[Path, str]:
    """The package to serve and a line saying which it is: the trained one if it checks out."""
    if (preferred / MANIFEST_FILE).is_file():
        try:
            onnx_path, manifest = load_package(preferred)
            verify_package(onnx_path, manifest)
            return preferred, f"trained model {manifest.name} from {preferred}"
        except PackageError as exc:
            reason = f"{preferred} fails its checks ({exc})"
    else:
        reason = f"no trained model in {preferred} (run `make demo`)"
    package = stand_in_package(work_dir / "stand-in-model")
    return package, f"stand-in classifier ({reason})"


@contextmanager
def local_stack(model_dir: Path, logs_dir: Path) -> Iterator[dict[str, str]]:
    """Inference (on the package in ``model_dir``) and the gateway as processes on free loopback
    ports, each logging to a file in ``logs_dir``; yields their URLs, stops both afterwards."""
    inference_port, gateway_port = free_port(), free_port()
    urls = {
        "inference": f"http://127.0.0.1:{inference_port}",
        "gateway": f"http://127.0.0.1:{gateway_port}",
    }
    with ExitStack() as stack:
        stack.enter_context(
            ManagedProcess(
                name="inference",
                command=[str(BIN / "brainscan-inference")],
                health_url=f"{urls['inference']}/v2/health/ready",
                log_path=logs_dir / "inference.log",
                env={
                    "INFERENCE_MODEL_SOURCE": "local",
                    "INFERENCE_MODEL_DIR": str(model_dir.resolve()),
                    "INFERENCE_HOST": "127.0.0.1",
                    "INFERENCE_PORT": str(inference_port),
                },
            )
        )
        stack.enter_context(
            ManagedProcess(
                name="gateway",
                command=[str(BIN / "brainscan-gateway")],
                health_url=f"{urls['gateway']}/readyz",
                log_path=logs_dir / "gateway.log",
                env={
                    "GATEWAY_INFERENCE_URL": urls["inference"],
                    "GATEWAY_MODEL_NAME": MODEL_NAME,
                    "GATEWAY_HOST": "127.0.0.1",
                    "GATEWAY_PORT": str(gateway_port),
                    # One load generator is one client: the per-client limit would answer 429.
                    "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
                },
            )
        )
        yield urls
