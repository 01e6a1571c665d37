"""`make demo`: the main job end to end on the embedded defaults.

Starts MLflow on the given port unless one already answers there, runs `dvc repro` (data ->
prepare -> train -> evaluate -> export -> register), prints what was registered, then serves the
model (inference + gateway), sends a few test images through the gateway and prints the answers.
Interactive runs keep serving until Ctrl-C; the page's URL is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from brainscan_training import paths
from brainscan_training.dataset import read_split_csv

from .mlflow_server import MlflowServer, is_healthy
from .stack import start_serving

log = logging.getLogger("brainscan.demo")
MLFLOW_HOME = Path(".mlflow")
STATE = Path(".demo")  # service logs and model caches


def ensure_mlflow(stack: ExitStack, port: int) -> str:
    url = f"http://127.0.0.1:{port}"
    if is_healthy(f"{url}/health"):
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
    guard = json.loads(paths.OOD_FILE.read_text())
    decision = json.loads(paths.REGISTRATION_FILE.read_text())
    lines = [
        "",
        "brainscan demo: model trained, evaluated, exported and registered",
        f"  test accuracy      {metrics['accuracy']:.4f}",
        f"  test macro F1      {metrics['macro_f1']:.4f}",
        f"  calibration (ECE)  {metrics['ece']:.4f}",
        f"  ONNX parity        max |diff| {parity['max_abs_diff_probabilities']:.2e}",
        f"  guard              {100 * guard['test_false_alarm_rate']:.1f} % of test images"
        f" flagged, {guard['corpus_items'] - guard['corpus_missed']:.0f}"
        f"/{guard['corpus_items']:.0f} of the out-of-distribution corpus (reports/ood.json)",
        f"  registered         {decision['model_name']} version {decision['version']}"
        f" -> {decision['alias']}",
        f"  why                {decision['reason']}",
        f"  MLflow             {tracking_uri} (browse it with `make mlflow`)",
        "  reports            reports/metrics.json, reports/plots/*.png",
    ]
    return "\n".join(lines)


def predict_samples(gateway_url: str, per_class: int = 2) -> str:
    """Send a few test-split images through the gateway, as a radiology tool would."""
    rows = read_split_csv(paths.split_csv("test"))
    chosen: dict[str, list[str]] = {}
    for path, label in rows:
        if len(chosen.setdefault(label, [])) < per_class:
            chosen[label].append(path)
    header = f"  {'file':<40} {'truth':<11} {'predicted':<11} {'confidence':>10}  flag"
    lines = ["", "predictions through the gateway (test split):", header]
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        for label, files in chosen.items():
            for relative in files:
                with open(paths.RAW_DIR / relative, "rb") as handle:
                    response = client.post(
                        "/api/v1/predictions",
                        files={"file": (Path(relative).name, handle, "image/jpeg")},
                    )
                if response.status_code != 200:
                    lines.append(f"  {relative:<40} {label:<11} error {response.status_code}")
                    continue
                lines.append(_answer_line(relative, label, response.json()))
        lines += ["", "and images it was not made for (the out-of-distribution corpus):", header]
        for name, data in _not_for_this_model():
            response = client.post("/api/v1/predictions", files={"file": (name, data)})
            if response.status_code != 200:
                lines.append(f"  {name:<40} {'-':<11} error {response.status_code}")
                continue
            lines.append(_answer_line(name, "-", response.json()))
    return "\n".join(lines)


def _answer_line(name: str, truth: str, answer: dict) -> str:
    if answer["in_distribution"] is False:
        flag = "not assessed (unlike the training images)"
    else:
        flag = "uncertain" if answer["uncertain"] else ""
    return f"  {name:<40} {truth:<11} {answer['label']:<11} {answer['confidence']:>10.3f}  {flag}"


def _not_for_this_model() -> list[tuple[str, bytes]]:
    """A blank image, a photograph, a CT slice and a head MRI from a real scanner, as PNG."""
    import io

    from brainscan_training.ood.corpus import build_corpus

    wanted = (
        "blank/black",
        "photo/grace_hopper",
        "other_modality/ct_small_soft_tissue",
        "real_scanner/s1045_sagittal_t1",
    )
    items = {item.name: item for item in build_corpus()}
    files = []
    for name in wanted:
        buffer = io.BytesIO()
        items[name].image.save(buffer, format="PNG")
        files.append((name.replace("/", "_") + ".png", buffer.getvalue()))
    return files


def serving_summary(urls: dict[str, str], model_name: str) -> str:
    """What model-sync publishes and what inference has loaded: the production version."""
    synced = httpx.get(f"{urls['model-sync']}/v1/models/{model_name}", timeout=10).json()
    served = httpx.get(f"{urls['inference']}/v2/models/{model_name}", timeout=10).json()
    return "\n".join(
        [
            "",
            "serving the registry's production model:",
            f"  model-sync         {model_name} version {synced.get('version')}"
            f" (sha256 {str(synced.get('sha256', ''))[:12]}…)",
            f"  inference          versions {served.get('versions')}",
        ]
    )


def serve_until_interrupted() -> None:
    sys.stdout.write("\nServing. Press Ctrl-C to stop everything.\n")
    sys.stdout.flush()
    try:
        signal.pause()
    except KeyboardInterrupt:
        sys.stdout.write("\nstopping...\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument(
        "--serve",
        choices=("auto", "yes", "no"),
        default="auto",
        help="keep the stack up until Ctrl-C (auto: only when run from a terminal)",
    )
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
        log.info("starting model-sync, inference and gateway (logs in %s/logs/)", STATE)
        model_name = json.loads(paths.REGISTRATION_FILE.read_text())["model_name"]
        urls = start_serving(stack, tracking_uri, model_name, STATE)
        sys.stdout.write(serving_summary(urls, model_name) + "\n")
        sys.stdout.write(predict_samples(urls["gateway"]) + "\n")
        sys.stdout.write(
            f"\n  web page           {urls['gateway']}/\n"
            f"  API docs           {urls['gateway']}/docs\n"
            f"  took               {time.monotonic() - started:.0f} s\n"
        )
        if args.serve == "yes" or (args.serve == "auto" and sys.stdin.isatty()):
            serve_until_interrupted()
    return 0


if __name__ == "__main__":
    sys.exit(main())
