"""A real inference service holding a challenger in shadow, from a local challenger directory
(``INFERENCE_CHALLENGER_DIR``), and gateways mirroring to it: the ``shadow_stack`` fixture
(conftest.py) and what the shadow tests ask of it."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from brainscan_testsupport.onnx_models import CLASSES
from gateway_images import png_bytes
from gateway_servers import RunningServer, write_package

ROTATED = CLASSES[1:] + CLASSES[:1]
"""The same model with its class names rotated: it disagrees on every image, predictably."""


@dataclass
class ShadowStack:
    inference: RunningServer
    models_dir: Path
    challenger_dir: Path
    start_gateway: Callable[..., RunningServer]

    def challenge(self, version: str, classes: list[str] = CLASSES, **package: object) -> None:
        """Make ``version`` (the served model's weights unless ``package`` options say
        otherwise, ``classes`` in its manifest) the challenger, built aside and moved in so the
        replica never sees half a package."""
        staging = self.challenger_dir.parent / f"staging-{version}"
        manifest = staging / "manifest.json"
        write_package(staging, **package)
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "classes": classes}))
        shutil.rmtree(self.challenger_dir, ignore_errors=True)
        self.challenger_dir.mkdir()
        staging.rename(self.challenger_dir / version)

    def withdraw(self) -> None:
        shutil.rmtree(self.challenger_dir)

    def promote(self, version: str) -> None:
        """The challenger becomes the served model (the highest version), and is no longer a
        challenger: what a promotion in the registry does to a replica."""
        (self.challenger_dir / version).rename(self.models_dir / version)

    def gateway(self, **settings: object) -> RunningServer:
        """A gateway in front of it that asks for the challenger every 0.1 s (unless told)."""
        return self.start_gateway(self.inference.url, **{"shadow_refresh_seconds": 0.1, **settings})


def model_info(gateway: RunningServer) -> dict:
    return httpx.get(f"{gateway.url}/api/v1/model", timeout=10).json()


def shadow_of(gateway: RunningServer, version: str | None) -> dict | None:
    """The gateway's shadow figures while it mirrors to ``version`` (else None)."""
    shadow = model_info(gateway)["shadow"]
    return shadow if (shadow and shadow["version"]) == version else None


def eventually(condition: Callable[[], object], what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout} s: {what}")


def predict(gateway: RunningServer, size: int = 64) -> dict:
    answer = httpx.post(
        f"{gateway.url}/api/v1/predictions", files={"file": ("s.png", png_bytes(size))}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def metric(gateway: RunningServer, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in httpx.get(f"{gateway.url}/metrics", timeout=10).text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, value = line.rsplit(" ", 1)
        if all(f'{key}="{want}"' in series for key, want in labels.items()):
            total += float(value)
    return total
