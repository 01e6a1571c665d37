"""The local serving stack a load test runs against: a model package, inference and the gateway.

The trained model (artifacts/export) is served when it is there and passes every package check;
otherwise a small stand-in classifier is built with onnx.helper (brainscan_testsupport), with
the trained model's signature (uint8 NHWC 128x128 RGB in, 4 probabilities and a feature map
out), so the gateway decodes, resizes and thresholds exactly as it would for the real one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from brainscan_localstack.processes import ManagedProcess, free_port
from brainscan_manifest import MANIFEST_FILE
from brainscan_manifest.verify import PackageError, load_package, verify_package
from brainscan_testsupport.packages import tiny_package

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TRAINED_MODEL = REPO / "artifacts" / "export"
MODEL_NAME = "brainscan-mobilenetv2"
INPUT_SIZE = 128


def stand_in_package(directory: Path, *, seed: int = 0, name: str = MODEL_NAME) -> Path:
    """A valid model package (model.onnx + manifest.json) with the trained model's signature:
    brainscan_testsupport's ``tiny_classifier`` at 128x128, its feature map pooled to 4x4."""
    return tiny_package(
        directory,
        name=name,
        size=INPUT_SIZE,
        features=8,
        map_size=4,
        seed=seed,
        manifest_fields={
            "description": "stand-in classifier for load and logging tests (not trained)",
            "default_threshold": 0.5,
        },
    )


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
