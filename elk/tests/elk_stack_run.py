"""A real run of the three services whose logs the ELK checks read.

MLflow, model-sync, inference (following model-sync) and the gateway run as processes on free
loopback ports, each writing its stdout to a file as a container would. The run goes through
what the dashboards show: predictions of every format (a DICOM with made-up patient data among
them), refused uploads, a model version model-sync refuses, a sync that fails on a broken
cache (a logged exception), a new version rolled out to inference and the gateway, a rollback,
and a restart of model-sync that restores the served version from its cache. Version 1 carries
no out-of-distribution guard (its predictions log no verdict); the new version carries a real
one, and gets an upload like the images it was fitted on and some unlike them (not assessed).
While it serves, two more guarded versions are in turn the challenger in shadow (one that agrees
with it, one that does not): the gateway mirrors predictions to each and logs one comparison
per pair, until the alias is removed again.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import onnx
from brainscan_localstack.mlflow_server import MlflowServer
from brainscan_localstack.processes import ManagedProcess, free_port
from brainscan_manifest import MANIFEST_FILE, MODEL_FILE, Manifest
from brainscan_manifest.preprocess import to_input_array
from brainscan_manifest.registry_contract import CHALLENGER, PACKAGE_ARTIFACT_PATH, PRODUCTION
from brainscan_testsupport.guard import with_guard
from brainscan_testsupport.packages import save_package, truncate_model
from brainscan_training.registry import Registry
from gateway_images import encode, mri_like, png_bytes
from loadtest_images import FAKE_PATIENT_ID, FAKE_PATIENT_NAME, make_bad_uploads, make_uploads
from loadtest_stack import MODEL_NAME, stand_in_package
from mlflow import MlflowClient
from PIL import Image

BIN = Path(sys.executable).parent
SERVICES = ("gateway", "inference", "model-sync")


@dataclass
class StackRun:
    """What a run left: each service's stdout lines, and what was sent that must not leak."""

    log_dir: Path
    lines: dict[str, list[str]] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    uploads: list[bytes] = field(default_factory=list)
    answers: dict[str, object] = field(default_factory=dict)

    def events(self, service: str | None = None) -> list[dict]:
        names = [service] if service else list(self.lines)
        return [json.loads(line) for name in names for line in self.lines[name]]


class _Registry:
    """Registers packages in MLflow and moves the production alias, as the pipeline does."""

    def __init__(self, url: str) -> None:
        self.client = MlflowClient(tracking_uri=url, registry_uri=url)
        self.registry = Registry(self.client, MODEL_NAME)
        self.experiment = self.client.create_experiment("elk-log-capture")

    def register(self, package: Path) -> str:
        run = self.client.create_run(self.experiment)
        version = self.registry.register_package(package, run.info.run_id, {"origin": "elk"})
        self.client.set_terminated(run.info.run_id)
        return version

    def register_unchecked(self, package: Path) -> str:
        """A broken package registered without the pipeline's checks (a careless client)."""
        run = self.client.create_run(self.experiment)
        for name in (MODEL_FILE, MANIFEST_FILE):
            self.client.log_artifact(run.info.run_id, str(package / name), PACKAGE_ARTIFACT_PATH)
        manifest = Manifest.load(package / MANIFEST_FILE)
        version = self.client.create_model_version(
            MODEL_NAME,
            source=f"{run.info.artifact_uri}/{PACKAGE_ARTIFACT_PATH}",
            run_id=run.info.run_id,
            tags=manifest.to_tags(),
        )
        self.client.set_terminated(run.info.run_id)
        return str(version.version)

    def promote(self, version: str) -> None:
        self.client.set_registered_model_alias(MODEL_NAME, PRODUCTION, version)

    def challenge(self, version: str | None) -> None:
        """Put ``version`` in shadow as the challenger; None: remove the alias."""
        if version is None:
            self.client.delete_registered_model_alias(MODEL_NAME, CHALLENGER)
        else:
            self.client.set_registered_model_alias(MODEL_NAME, CHALLENGER, version)


def _truncated_package(directory: Path) -> Path:
    """A package whose ONNX file is cut in half, its sha256 updated: only the checker sees it."""
    return truncate_model(stand_in_package(directory, seed=7))


def _guarded_package(directory: Path, seed: int) -> Path:
    """The stand-in with a real out-of-distribution guard fitted on MRI-like slices
    (gateway_images.mri_like), as the gateway tests' ``write_package(guard=True)`` does."""
    stand_in_package(directory, seed=seed)
    manifest = Manifest.load(directory / MANIFEST_FILE)
    sides = np.linspace(40, 320, 240).astype(int)
    inputs = np.stack(
        [to_input_array(Image.fromarray(mri_like(side, index)), manifest.input)
         for index, side in enumerate(sides)]
    )  # fmt: skip
    # The guard fits on the first half and calibrates on the second: both get every size.
    inputs = inputs[np.random.default_rng(0).permutation(len(inputs))]
    model = onnx.load(directory / MODEL_FILE)
    return save_package(directory, *with_guard(model, manifest, inputs, false_alarm_rate=0.05))


def _guard_uploads() -> list[tuple[str, bytes, str]]:
    """(name, bytes, content type): a slice like the guard's, and a blank and a noise image."""
    noise = np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    return [
        ("mri-like.png", png_bytes(96), "image/png"),
        ("blank.png", encode(Image.new("L", (96, 96), 0), "PNG"), "image/png"),
        ("noise.png", encode(Image.fromarray(noise), "PNG"), "image/png"),
    ]


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"not reached in {timeout:.0f}s: {what}")


def run_stack(work: Path) -> StackRun:
    """Run the scenario in ``work`` and return the services' logs once they have stopped."""
    logs = work / "logs"
    result = StackRun(log_dir=logs, secrets=[FAKE_PATIENT_NAME, FAKE_PATIENT_ID])
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    modelsync_cache = work / "model-sync-cache"
    with ExitStack() as stack:
        mlflow = stack.enter_context(MlflowServer(work / "mlflow"))
        registry = _Registry(mlflow.url)
        first = registry.register(stand_in_package(work / "v1", seed=0))
        registry.promote(first)
        modelsync = stack.enter_context(
            ManagedProcess(
                "model-sync",
                [str(BIN / "brainscan-model-sync")],
                f"{urls['model-sync']}/readyz",
                logs / "model-sync.log",
                env={
                    "MODELSYNC_MLFLOW_TRACKING_URI": mlflow.url,
                    "MODELSYNC_MODELS": MODEL_NAME,
                    "MODELSYNC_CACHE_DIR": str(modelsync_cache),
                    "MODELSYNC_HOST": "127.0.0.1",
                    "MODELSYNC_PORT": str(ports["model-sync"]),
                    "MODELSYNC_POLL_INTERVAL": "3600",  # this run triggers every check itself
                },
            )
        )
        stack.enter_context(
            ManagedProcess(
                "inference",
                [str(BIN / "brainscan-inference")],
                f"{urls['inference']}/v2/health/ready",
                logs / "inference.log",
                env={
                    "INFERENCE_MODEL_SOURCE": "modelsync",
                    "INFERENCE_MODELSYNC_URL": urls["model-sync"],
                    "INFERENCE_MODELSYNC_MODEL": MODEL_NAME,
                    "INFERENCE_MODELSYNC_CACHE_DIR": str(work / "inference-cache"),
                    "INFERENCE_MODELSYNC_WAIT": "2",
                    "INFERENCE_HOST": "127.0.0.1",
                    "INFERENCE_PORT": str(ports["inference"]),
                },
            )
        )
        stack.enter_context(
            ManagedProcess(
                "gateway",
                [str(BIN / "brainscan-gateway")],
                f"{urls['gateway']}/readyz",
                logs / "gateway.log",
                env={
                    "GATEWAY_INFERENCE_URL": urls["inference"],
                    "GATEWAY_MODEL_NAME": MODEL_NAME,
                    "GATEWAY_HOST": "127.0.0.1",
                    "GATEWAY_PORT": str(ports["gateway"]),
                    "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
                    # Notice the challenger's arrival and removal within the run.
                    "GATEWAY_SHADOW_REFRESH_SECONDS": "0.5",
                    "GATEWAY_FEEDBACK_DIR": str(work / "feedback"),
                },
            )
        )
        _traffic(urls, registry, first, modelsync_cache, work, result)
        # A restart: model-sync serves the cached version before the registry answers.
        modelsync.stop()
        modelsync.start()
    for name in SERVICES:
        text = (logs / f"{name}.log").read_text()
        result.lines[name] = [line for line in text.splitlines() if line.strip()]
    return result


def _traffic(
    urls: dict[str, str],
    registry: _Registry,
    first: str,
    cache: Path,
    work: Path,
    result: StackRun,
) -> None:
    gateway = httpx.Client(base_url=urls["gateway"], timeout=60)
    modelsync = httpx.Client(base_url=urls["model-sync"], timeout=60)
    inference = httpx.Client(base_url=urls["inference"], timeout=60)
    predictions = []

    def predict(name: str, data: bytes, content_type: str, **params) -> None:
        files = {"file": (name, data, content_type)}
        response = gateway.post("/api/v1/predictions", files=files, params=params)
        assert response.status_code == 200, response.text
        predictions.append(response.json())

    uploads = make_uploads(per_variant=1)
    slices = [(u.name, u.data, u.content_type) for u in uploads]
    guard_files = _guard_uploads()
    result.uploads = [data for _, data, _ in slices + guard_files]
    for file in slices:
        predict(*file)
    predict(*slices[0], explain="true", preview="true")
    # Reviewers: one confirms an answer, one corrects another (with a comment, never logged).
    for answer, correct in ((predictions[0], True), (predictions[1], False)):
        label = answer["label"] if correct else _another_class(answer)
        body = {"label": label, **({} if correct else {"comment": "second reader disagrees"})}
        response = gateway.post(f"/api/v1/predictions/{answer['request_id']}/feedback", json=body)
        assert response.status_code == 201, response.text
    for bad in make_bad_uploads():
        files = {"file": (bad.name, bad.data, bad.content_type)}
        response = gateway.post("/api/v1/predictions", files=files)
        assert (response.status_code, response.json()["error"]["code"]) == (bad.status, bad.code)
    assert gateway.get("/api/v1/model").status_code == 200
    assert gateway.get("/no/such/page").status_code == 404
    assert inference.post(f"/v2/models/{MODEL_NAME}/infer", content=b"{").status_code == 400

    # A broken version: model-sync refuses it and keeps serving version 1.
    broken = registry.register_unchecked(_truncated_package(work / "v-broken"))
    registry.promote(broken)
    result.answers["refused"] = modelsync.post(f"/v1/models/{MODEL_NAME}/sync").json()

    # A good version while the cache is broken (a file where a folder must be): the sync fails
    # with an exception, logged with its stack trace; repaired, the next sync publishes it.
    second = registry.register(_guarded_package(work / "v2", seed=1))
    registry.promote(second)
    incoming = next(cache.rglob("incoming"))
    shutil.rmtree(incoming)
    incoming.write_text("not a folder")
    result.answers["failed"] = modelsync.post(f"/v1/models/{MODEL_NAME}/sync").json()
    incoming.unlink()
    incoming.mkdir()
    result.answers["published"] = modelsync.post(f"/v1/models/{MODEL_NAME}/sync").json()
    _wait_for(
        lambda: inference.get(f"/v2/models/{MODEL_NAME}").json().get("versions") == [second],
        f"inference serves version {second}",
    )
    predict(*slices[1])
    for file in guard_files:
        predict(*file)
    _shadow(gateway, inference, modelsync, registry, work, predict, slices + guard_files, result)

    # Rollback: the alias moves back to version 1.
    registry.promote(first)
    result.answers["rolled_back"] = modelsync.post(f"/v1/models/{MODEL_NAME}/sync").json()
    _wait_for(
        lambda: inference.get(f"/v2/models/{MODEL_NAME}").json().get("versions") == [first],
        f"inference serves version {first} again",
    )
    predict(*slices[2])
    result.answers["predictions"] = predictions
    for client in (gateway, modelsync, inference):
        client.close()


def _another_class(answer: dict) -> str:
    return next(name for name in answer["probabilities"] if name != answer["label"])


def _shadow(gateway, inference, modelsync, registry, work, predict, files, result) -> None:
    """Two challengers in turn beside the served guarded version (seed 1), both guarded, so
    every out-of-distribution verdict is a boolean: a re-registration of the served model
    (agrees on every image), then another seed (disagrees); every upload is mirrored to each.
    Then the alias is removed and the gateway stops mirroring."""

    def shadow() -> dict | None:
        return gateway.get("/api/v1/model").json().get("shadow")

    result.answers["shadow"] = []
    for name, seed in (("v-same", 1), ("v-other", 2)):
        challenger = registry.register(_guarded_package(work / name, seed=seed))
        registry.challenge(challenger)
        modelsync.post(f"/v1/models/{MODEL_NAME}/sync").raise_for_status()
        _wait_for(
            lambda: (shadow() or {}).get("version") == challenger,  # noqa: B023 (called here)
            f"the gateway mirrors to challenger {challenger}",
        )
        for file in files:
            predict(*file)
        # The comparisons happen after the answers: wait until every one is accounted for.
        _wait_for(
            lambda: sum(shadow()[n] for n in ("mirrored", "failed", "dropped")) >= len(files),
            f"every prediction mirrored to {challenger} compared",
        )
        result.answers["shadow"].append(shadow())
    registry.challenge(None)
    modelsync.post(f"/v1/models/{MODEL_NAME}/sync").raise_for_status()
    _wait_for(lambda: shadow() is None, "the gateway stops mirroring")
    assert inference.get(f"/v2/models/{MODEL_NAME}/challenger/manifest").status_code == 404
