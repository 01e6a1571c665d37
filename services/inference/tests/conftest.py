"""Fixtures: tiny real ONNX classifiers with manifests, and real uvicorn servers on free ports.

Tests use these through fixtures only (never by importing this module), so they work under
any pytest import mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
import uvicorn
from brainscan_inference.app import create_app
from brainscan_inference.main import SERVER_OPTIONS
from brainscan_inference.settings import InferenceSettings
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_manifest.verify import sha256_file
from brainscan_servicekit import server_config
from onnx import TensorProto, helper, numpy_helper

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]
IMAGE_SIZE = 8
FEATURES = 5


def build_model(
    *,
    size: int = IMAGE_SIZE,
    features: int = FEATURES,
    num_outputs: int = len(CLASSES),
    dtype: str = "uint8",
    layout: str = "NHWC",
    seed: int = 0,
    probabilities_dtype: int = TensorProto.FLOAT,
    feature_map_dtype: int = TensorProto.FLOAT,
    feature_map_shape: list[int | str] | None = None,
    feature_map_rank: int = 4,
) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """image -> per-pixel features (the "feature map") -> global mean -> dense -> softmax.

    Returns the model and its dense layer (weights [K, C], bias [C]), which is exactly what a
    class activation map needs. The output dtypes (a Cast at the end) and the feature map's
    declared shape can be changed, and ``feature_map_rank=3`` averages its channels away
    whatever the declared shape says: models that are odd or broken but valid ONNX.
    """
    rng = np.random.default_rng(seed)
    pixel_weights = rng.normal(0, 1, (3, features)).astype(np.float32)
    dense = rng.normal(0, 3, (features, num_outputs)).astype(np.float32)
    bias = rng.normal(0, 0.1, (num_outputs,)).astype(np.float32)
    onnx_dtype = TensorProto.UINT8 if dtype == "uint8" else TensorProto.FLOAT
    in_shape = ["N", size, size, 3] if layout == "NHWC" else ["N", 3, size, size]
    fmap_shape = ["N", size, size, features] if layout == "NHWC" else ["N", features, size, size]
    nodes = []
    source = "image"
    if layout == "NCHW":
        nodes.append(helper.make_node("Transpose", [source], ["nhwc"], perm=[0, 2, 3, 1]))
        source = "nhwc"
    nodes += [
        helper.make_node("Cast", [source], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["pixels", "inv255"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "pixel_weights"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["features_nhwc"]),
        helper.make_node("ReduceMean", ["features_nhwc"], ["pooled"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["pooled", "dense"], ["dense_out"]),
        helper.make_node("Add", ["dense_out", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["softmax"], axis=-1),
        helper.make_node("Cast", ["softmax"], ["probabilities"], to=probabilities_dtype),
    ]
    if layout == "NCHW":
        nodes.append(
            helper.make_node("Transpose", ["features_nhwc"], ["features"], perm=[0, 3, 1, 2])
        )
    else:
        nodes.append(helper.make_node("Identity", ["features_nhwc"], ["features"]))
    if feature_map_rank == 3:
        axis = 3 if layout == "NHWC" else 1
        nodes.append(
            helper.make_node("ReduceMean", ["features"], ["flat"], axes=[axis], keepdims=0)
        )
    nodes.append(
        helper.make_node(
            "Cast",
            ["features" if feature_map_rank == 4 else "flat"],
            ["feature_map"],
            to=feature_map_dtype,
        )
    )
    graph = helper.make_graph(
        nodes,
        "tiny_classifier",
        [helper.make_tensor_value_info("image", onnx_dtype, in_shape)],
        [
            helper.make_tensor_value_info("probabilities", probabilities_dtype, ["N", num_outputs]),
            helper.make_tensor_value_info(
                "feature_map", feature_map_dtype, feature_map_shape or fmap_shape
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


def write_package(
    directory: Path,
    *,
    name: str = "tiny",
    version: str | None = None,
    dtype: str = "uint8",
    layout: str = "NHWC",
    seed: int = 0,
    num_outputs: int = len(CLASSES),
    with_cam: bool = True,
    cam_weights: list[list[float]] | None = None,
    guard: bool = False,
    **model_options: object,
) -> Path:
    """A complete model package (model.onnx + manifest.json) in ``directory``.

    ``cam_weights`` replaces the dense layer's weights in the manifest (a broken package);
    ``guard`` adds an out-of-distribution guard fitted on random images; ``model_options`` go
    to ``build_model``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    model, dense, bias = build_model(
        num_outputs=num_outputs, dtype=dtype, layout=layout, seed=seed, **model_options
    )
    onnx.save(model, directory / MODEL_FILE)
    if num_outputs != len(CLASSES):  # a broken package: keep the manifest itself valid
        dense = np.resize(dense, (dense.shape[0], len(CLASSES)))
        bias = np.resize(bias, (len(CLASSES),))
    cam = {
        "feature_map": "feature_map",
        "layout": layout,
        "weights": dense.tolist() if cam_weights is None else cam_weights,
        "bias": bias.tolist(),
    }
    manifest = Manifest.model_validate(
        {
            "name": name,
            "version": version,
            "classes": CLASSES,
            "input": {
                "name": "image",
                "height": IMAGE_SIZE,
                "width": IMAGE_SIZE,
                "layout": layout,
                "dtype": dtype,
                "scale": 1.0 if dtype == "uint8" else 1 / 255,
            },
            "outputs": {
                "probabilities": "probabilities",
                "activation_map": cam if with_cam else None,
            },
            "onnx_sha256": sha256_file(directory / MODEL_FILE),
        }
    )
    if guard:
        from manifest_models import guarded_model

        shape = (
            (200, IMAGE_SIZE, IMAGE_SIZE, 3)
            if layout == "NHWC"
            else (200, 3, IMAGE_SIZE, IMAGE_SIZE)
        )
        pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
        fit = guarded_model(model, manifest, pixels if dtype == "uint8" else pixels / 255.0)
        onnx.save(fit.model, directory / MODEL_FILE)
        manifest = manifest.model_copy(
            update={"ood": fit.spec, "onnx_sha256": sha256_file(directory / MODEL_FILE)}
        )
    manifest.save(directory / MANIFEST_FILE)
    return directory


@pytest.fixture
def package_factory() -> Callable[..., Path]:
    """``write_package(directory, **options)``: a tiny real model package."""
    return write_package


@pytest.fixture
def model_builder() -> Callable[..., tuple[onnx.ModelProto, np.ndarray, np.ndarray]]:
    return build_model


@pytest.fixture
def classes() -> list[str]:
    return list(CLASSES)


@pytest.fixture
def image_size() -> int:
    return IMAGE_SIZE


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A directory holding one tiny package, version 1 (``<dir>/1/``)."""
    write_package(tmp_path / "models" / "1")
    return tmp_path / "models"


def make_settings(model_dir: Path, **overrides: object) -> InferenceSettings:
    """Settings for tests: one onnxruntime thread, quick polling, small batches."""
    values: dict[str, object] = {
        "model_dir": model_dir,
        "model_poll_interval": 0.2,
        "intra_op_threads": 1,
        "max_batch_size": 8,
        "queue_capacity": 64,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return InferenceSettings(**values)


@pytest.fixture
def settings_factory() -> Callable[..., InferenceSettings]:
    return make_settings


class RunningServer:
    """A uvicorn server running ``app`` in a thread, on a socket bound to a free port."""

    def __init__(self, app) -> None:
        self.app = app
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = server_config(app, lifespan="on", **SERVER_OPTIONS)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"uvicorn-{self.port}")

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.socket]))

    def start(self) -> RunningServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Block until /v2/health/ready says 200 (model loaded and warmed up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError("service did not become ready")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RunningServer]]:
    """``serve(settings_or_app, ready=True)``: start a real server; stopped after the test."""
    running: list[RunningServer] = []

    def start(target, *, ready: bool = True, **app_options) -> RunningServer:
        app = create_app(target, **app_options) if isinstance(target, InferenceSettings) else target
        server = RunningServer(app).start()
        running.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def server(serve, model_dir: Path) -> RunningServer:
    """A ready service on the tiny model (name "tiny", version "1")."""
    return serve(make_settings(model_dir))


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory) -> Iterator[RunningServer]:
    """One ready service for a whole test module (read-only tests)."""
    directory = tmp_path_factory.mktemp("shared") / "models"
    write_package(directory / "1")
    server = RunningServer(create_app(make_settings(directory))).start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def images(image_size: int) -> Callable[[int], np.ndarray]:
    """``images(n)``: n random uint8 NHWC images, the same for the same n."""

    def make(n: int, seed: int = 1) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (n, image_size, image_size, 3), dtype=np.uint8)

    return make


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the service's loop), via anyio's pytest plugin."""
    return "asyncio"
