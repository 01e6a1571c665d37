"""Promotion on evidence: the shadow gate, read from a real serving stack.

The slow test runs what an ML engineer runs: real MLflow, model-sync following both aliases,
inference holding the challenger in shadow and the gateway mirroring to it, all as processes
on free ports; then `brainscan-train status` and `promote` against it.
"""

from __future__ import annotations

import io
import json
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import mlflow
import numpy as np
import pytest
import yaml
from brainscan_localstack.processes import free_port
from brainscan_localstack.stack import StackPorts, start_serving
from brainscan_testsupport.onnx_models import CONFUSED, PERFECT, quadrant_image
from brainscan_testsupport.packages import quadrant_package
from brainscan_training.cli import main
from brainscan_training.registry import Registry
from brainscan_training.shadow_evidence import (
    EvidenceUnavailable,
    ShadowEvidence,
    ShadowGate,
    read_evidence,
)
from mlflow import MlflowClient
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def evidence(mirrored: int, agreed: int) -> ShadowEvidence:
    return ShadowEvidence("2", mirrored, agreed, "test")


def test_the_gate_asks_for_enough_pairs_then_enough_agreement():
    gate = ShadowGate(min_requests=100, min_agreement=0.9)
    assert gate.enabled and not ShadowGate().enabled
    assert gate.shortfall(evidence(99, 99)) == (
        "99 predictions compared in shadow, 100 needed (register.shadow_min_requests)"
    )
    assert "agreement with production 0.800 over 100 predictions, 0.9 needed" in (
        gate.shortfall(evidence(100, 80))
    )
    assert gate.shortfall(evidence(100, 90)) is None
    # An agreement bar alone still needs one comparison: no evidence is never enough.
    assert ShadowGate(min_agreement=0.5).shortfall(evidence(0, 0)).startswith("0 predictions")


def test_an_unreachable_source_is_no_evidence():
    url = f"http://127.0.0.1:{free_port()}"
    for kind in ("gateway", "prometheus"):
        with pytest.raises(EvidenceUnavailable, match=f"the {kind} at {url}"):
            read_evidence(kind, url, "2", timeout=2)


def register(registry: Registry, directory: Path, mapping) -> str:
    quadrant_package(directory, mapping, name=registry.model_name)  # model-sync checks the name
    mlflow.set_experiment("shadow-evidence-tests")
    with mlflow.start_run() as run:
        return registry.register_package(directory, run.info.run_id, {"origin": "test"})


def quadrant_png(label: int, seed: int) -> bytes:
    """A quadrant slice at 64 px (the models resize it back to 16 px, nearest neighbour)."""
    pixels = quadrant_image(label, np.random.default_rng(seed))
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((64, 64), Image.NEAREST).save(buffer, "PNG")
    return buffer.getvalue()


def wait_for(condition, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not reached within {timeout} s: {what}")


def params_with(tmp_path: Path, **register: object) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["register"].update(register)
    path = tmp_path / f"params-{len(list(tmp_path.glob('params-*')))}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def cli(capsys, params: Path, model: str, *args: str) -> tuple[int, dict | None, str]:
    code = main(["--params", str(params), "--model", model, *args])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 and lines else None), captured.err


@pytest.mark.slow
def test_promotion_waits_for_shadow_evidence_and_a_force_is_tagged(
    tracking, model_name, tmp_path, capsys
):
    registry = Registry(MlflowClient(), model_name)
    v1 = register(registry, tmp_path / "v1", PERFECT)
    registry.set_production(v1, "first")
    v2 = register(registry, tmp_path / "v2", CONFUSED)  # calls pituitary notumor
    registry.mark_challenger(v2, "in shadow for the test")
    ports = StackPorts(gateway=free_port(), inference=free_port(), model_sync=free_port())
    with ExitStack() as stack:
        gateway = start_serving(stack, tracking, model_name, tmp_path / "state", ports)["gateway"]

        def shadow() -> dict | None:
            return httpx.get(f"{gateway}/api/v1/model", timeout=10).json()["shadow"]

        wait_for(lambda: (shadow() or {}).get("version") == v2, "the gateway mirroring to v2")
        with httpx.Client(base_url=gateway, timeout=30) as client:
            for label in range(4):
                for seed in range(2):
                    files = {"file": ("slice.png", quadrant_png(label, seed))}
                    answer = client.post("/api/v1/predictions", files=files)
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["model"]["version"] == v1
        wait_for(lambda: shadow()["mirrored"] == 8, "8 predictions compared")
        assert shadow()["agreed"] == 6  # the two pituitary slices disagree

        source = {"shadow_evidence_url": gateway}
        too_few = params_with(tmp_path, shadow_min_requests=100, **source)
        code, status, _ = cli(capsys, too_few, model_name, "status")
        assert code == 0 and status["challenger"] == v2
        assert status["shadow"]["mirrored"] == 8 and status["shadow"]["agreement"] == 0.75
        assert status["shadow"]["shortfall"].startswith("8 predictions compared in shadow, 100")

        code, _, err = cli(capsys, too_few, model_name, "promote", "--version", v2)
        assert code == 2 and "not promoted: 8 predictions compared in shadow, 100 needed" in err
        disagreeing = params_with(tmp_path, shadow_min_requests=5, shadow_min_agreement=0.9,
                                  **source)  # fmt: skip
        code, _, err = cli(capsys, disagreeing, model_name, "promote", "--version", v2)
        assert code == 2 and "agreement with production 0.750 over 8 predictions" in err
        assert registry.alias_version("production") == v1

        enough = params_with(tmp_path, shadow_min_requests=5, shadow_min_agreement=0.7, **source)
        code, decision, _ = cli(capsys, enough, model_name, "promote", "--version", v2)
        assert code == 0 and decision["promoted"]
        tags = registry.client.get_model_version(model_name, v2).tags
        assert tags["shadow.mirrored"] == "8" and tags["shadow.agreement"] == "0.750000"
        assert tags["promotion.forced"] == "false"
        # Promotion moved the alias off the challenger: model-sync withdraws it from shadow,
        # inference drops it and the gateway stops mirroring; the answers now come from v2.
        wait_for(lambda: shadow() is None, "mirroring stopped once the challenger alias moved")
        with httpx.Client(base_url=gateway, timeout=30) as client:
            files = {"file": ("slice.png", quadrant_png(0, 0))}
            wait_for(
                lambda: (
                    client.post("/api/v1/predictions", files=files).json()["model"]["version"] == v2
                ),
                "answers from the promoted v2",
            )

        # A new challenger promoted before it has any evidence: only with --force, tagged.
        v3 = register(registry, tmp_path / "v3", PERFECT)
        registry.mark_challenger(v3, "no time in shadow")
        code, _, err = cli(capsys, too_few, model_name, "promote", "--version", v3)
        assert code == 2 and "--force" in err
        code, decision, _ = cli(capsys, too_few, model_name, "promote", "--version", v3, "--force")
        assert code == 0 and decision["promoted"]
        tags = registry.client.get_model_version(model_name, v3).tags
        assert tags["promotion.forced"] == "true"
        assert tags["promotion.forced_over"].endswith("needed (register.shadow_min_requests)")
