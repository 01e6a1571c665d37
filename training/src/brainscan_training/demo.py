"""`make demo`: the training half end to end on the embedded defaults.

Starts MLflow on the given port unless one already answers there, runs `dvc repro` (data ->
prepare -> train -> evaluate -> export -> register), then prints what was registered.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from . import paths
from .mlflow_server import MlflowServer, is_healthy

log = logging.getLogger("brainscan.demo")
MLFLOW_HOME = Path(".mlflow")


def ensure_mlflow(stack: ExitStack, port: int) -> str:
    url = f"http://127.0.0.1:{port}"
    if is_healthy(url):
        log.info("using the MLflow server already running at %s", url)
        return url
    log.info("starting MLflow at %s (store: %s/)", url, MLFLOW_HOME)
    server = stack.enter_context(MlflowServer(MLFLOW_HOME, port=port))
    return server.url


def run_pipeline(tracking_uri: str) -> None:
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    subprocess.run([f"{venv_bin}/dvc", "repro"], check=True, env=env)


def summary(tracking_uri: str) -> str:
    metrics = json.loads(paths.METRICS_FILE.read_text())
    parity = json.loads(paths.PARITY_FILE.read_text())
    decision = json.loads(paths.REGISTRATION_FILE.read_text())
    lines = [
        "",
        "brainscan demo: model trained, evaluated, exported and registered",
        f"  test accuracy      {metrics['accuracy']:.4f}",
        f"  test macro F1      {metrics['macro_f1']:.4f}",
        f"  calibration (ECE)  {metrics['ece']:.4f}",
        f"  ONNX parity        max |diff| {parity['max_abs_diff_probabilities']:.2e}",
        f"  registered         {decision['model_name']} version {decision['version']}"
        f" -> {decision['alias']}",
        f"  why                {decision['reason']}",
        f"  MLflow             {tracking_uri} (browse it with `make mlflow`)",
        "  reports            reports/metrics.json, reports/plots/*.png",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.monotonic()
    with ExitStack() as stack:
        tracking_uri = ensure_mlflow(stack, args.mlflow_port)
        try:
            run_pipeline(tracking_uri)
        except subprocess.CalledProcessError as exc:
            log.error("the pipeline failed (exit %s); see the stage output above", exc.returncode)
            return 1
        sys.stdout.write(summary(tracking_uri) + "\n")
    sys.stdout.write(f"  took               {time.monotonic() - started:.0f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
