"""`make demo`: the main job end to end on the embedded defaults.

Starts MLflow on the given port unless one already answers there, runs `dvc repro` (data ->
prepare -> train -> evaluate -> export -> register), prints what was registered, registers a
challenger (the same package again) unless there is one, then serves the model (model-sync,
inference + gateway, the challenger in shadow), sends a few test images through the gateway and
prints the answers and how the challenger compared.
Interactive runs keep serving until Ctrl-C; the page's URL is printed.

SIGTERM stops it as Ctrl-C does: every child (MLflow, the pipeline, model-sync, inference, the
gateway) is stopped with its whole process group. A port it needs that something else holds is
refused before anything starts. model-sync gets a webhook secret made for the run, so a
promotion reaches it at once (MLflow's webhook) rather than at the next poll.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
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
from .processes import port_in_use
from .stack import StackPorts, mlflow_webhook_settings, start_serving

log = logging.getLogger("brainscan.demo")
MLFLOW_HOME = Path(".mlflow")
STATE = Path(".demo")  # service logs and model caches


class PortTaken(RuntimeError):
    """A port the demo needs is held by something else."""


def check_ports(mlflow_port: int, ports: StackPorts) -> None:
    """Refuse to start when a port is taken: the demo would report "serving" against whatever
    answers there. An MLflow server on the MLflow port is used, not refused."""
    taken = [(name, port) for name, port in ports.items() if port_in_use(port)]
    if port_in_use(mlflow_port) and not is_healthy(f"http://127.0.0.1:{mlflow_port}/health"):
        taken.insert(0, ("MLflow", mlflow_port))
    if taken:
        names = ", ".join(f"{port} ({name})" for name, port in taken)
        raise PortTaken(
            f"port {names} already in use by another program: stop it, or give the demo other"
            " ports (--mlflow-port, --gateway-port, --inference-port, --model-sync-port)"
        )


def webhook_encryption_key() -> str:
    """The Fernet key the demo's MLflow encrypts stored webhook secrets with, kept beside its
    store: a new key at each start could no longer read the secrets stored before."""
    from cryptography.fernet import Fernet

    path = MLFLOW_HOME / "webhook-encryption.key"
    if not path.exists():
        MLFLOW_HOME.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(Fernet.generate_key().decode())
    return path.read_text().strip()


def ensure_mlflow(stack: ExitStack, port: int) -> tuple[str, bool]:
    """The tracking URI, and whether this MLflow can call model-sync's webhook (one the demo
    started; a server that was already running is used as it is configured)."""
    url = f"http://127.0.0.1:{port}"
    if is_healthy(f"{url}/health"):
        log.info("using the MLflow server already running at %s", url)
        return url, False
    log.info("starting MLflow at %s (store: %s/)", url, MLFLOW_HOME)
    settings = mlflow_webhook_settings(webhook_encryption_key())
    server = stack.enter_context(MlflowServer(MLFLOW_HOME, port=port, env=settings))
    return server.url, True


def run_pipeline(tracking_uri: str) -> None:
    """`dvc repro` in a process group of its own, stopped as a group if the demo is interrupted
    (dvc's stage commands are its children)."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = subprocess.Popen([f"{venv_bin}/dvc", "repro"], env=env, start_new_session=True)
    try:
        returncode = process.wait()
    except BaseException:
        _stop_group(process)
        raise
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, process.args)


def _stop_group(process: subprocess.Popen, timeout: float = 15.0) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


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


def predict_samples(gateway_url: str, per_class: int = 2) -> tuple[str, int]:
    """Send a few test-split images through the gateway, as a radiology tool would; the
    answers as lines, and how many were answered."""
    rows = read_split_csv(paths.split_csv("test"))
    chosen: dict[str, list[str]] = {}
    for path, label in rows:
        if len(chosen.setdefault(label, [])) < per_class:
            chosen[label].append(path)
    header = f"  {'file':<40} {'truth':<11} {'predicted':<11} {'confidence':>10}  flag"
    lines = ["", "predictions through the gateway (test split):", header]
    answered = 0
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
                answered += 1
                lines.append(_answer_line(relative, label, response.json()))
        lines += ["", "and images it was not made for (the out-of-distribution corpus):", header]
        for name, data in _not_for_this_model():
            response = client.post("/api/v1/predictions", files={"file": (name, data)})
            if response.status_code != 200:
                lines.append(f"  {name:<40} {'-':<11} error {response.status_code}")
                continue
            answered += 1
            lines.append(_answer_line(name, "-", response.json()))
    return "\n".join(lines), answered


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


def ensure_challenger(tracking_uri: str, model_name: str) -> None:
    """A challenger for the shadow track to show: the package just built, registered again by
    the bring-your-own-model path (`register-external` without `--promote` makes a challenger).
    Same weights, so it must agree on every mirrored prediction: anything less is a bug in the
    shadow path. Skipped when the registry already has a challenger (a demo run before)."""
    from brainscan_manifest.registry_contract import CHALLENGER
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient(tracking_uri).get_model_version_by_alias(model_name, CHALLENGER)
        return
    except MlflowException:
        pass
    log.info("registering a challenger to serve in shadow (the same package, a new version)")
    venv_bin = Path(sys.executable).parent
    command = [str(venv_bin / "brainscan-train"), "--model", model_name, "register-external",
               "--onnx", str(paths.PACKAGE_DIR / "model.onnx"),
               "--manifest", str(paths.PACKAGE_DIR / "manifest.json")]  # fmt: skip
    subprocess.run(command, env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}, check=True)


def wait_for_shadow(gateway_url: str, timeout: float = 60.0) -> dict | None:
    """The gateway's shadow figures once it mirrors to a challenger (None if it never does:
    the challenger was refused, see the model-sync log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shadow = httpx.get(f"{gateway_url}/api/v1/model", timeout=10).json().get("shadow")
        if shadow:
            return shadow
        time.sleep(0.5)
    return None


def shadow_summary(gateway_url: str, offered: int) -> str:
    """How the challenger compared on the predictions just sent (mirrored off the answer path,
    so the last few may still be in flight: wait a little for them)."""
    shadow = wait_for_shadow(gateway_url, timeout=5)
    deadline = time.monotonic() + 10
    while shadow and time.monotonic() < deadline:
        if shadow["mirrored"] + shadow["dropped"] + shadow["failed"] >= offered:
            break
        time.sleep(0.25)
        shadow = wait_for_shadow(gateway_url, timeout=5)
    if not shadow:
        return "\n  challenger         none in shadow (see .demo/logs/model-sync.log)"
    agreement = shadow["agreement"]
    share = "-" if agreement is None else f"{100 * agreement:.0f} %"
    return (
        f"\n  challenger         version {shadow['version']} in shadow: agreed on "
        f"{shadow['agreed']} of {shadow['mirrored']} mirrored predictions ({share}); "
        "promote it with `brainscan-train promote --version "
        f"{shadow['version']}` (docs/training.md)"
    )


def serving_summary(urls: dict[str, str], model_name: str) -> str:
    """What model-sync publishes and what inference has loaded: the production version."""
    synced = httpx.get(f"{urls['model-sync']}/v1/models/{model_name}", timeout=10).json()
    served = httpx.get(f"{urls['inference']}/v2/models/{model_name}", timeout=10).json()
    webhook = httpx.get(f"{urls['model-sync']}/readyz", timeout=10).json().get("webhook", {})
    return "\n".join(
        [
            "",
            "serving the registry's production model:",
            f"  model-sync         {model_name} version {synced.get('version')}"
            f" (sha256 {str(synced.get('sha256', ''))[:12]}…)",
            f"  inference          versions {served.get('versions')}",
            f"  promotions reach   model-sync by webhook: {webhook.get('state')}"
            f" ({webhook.get('detail')}); by polling every 5 s otherwise",
        ]
    )


def serve_until_interrupted() -> None:
    sys.stdout.write("\nServing. Press Ctrl-C to stop everything.\n")
    sys.stdout.flush()
    while True:
        signal.pause()


def _interrupt(signum: int, _frame) -> None:
    """SIGTERM and SIGINT: unwind as Ctrl-C does, once; further signals are ignored so that
    stopping the children (each bounded by a SIGKILL) is not cut short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlflow-port", type=int, default=5000)
    defaults = StackPorts()
    parser.add_argument("--gateway-port", type=int, default=defaults.gateway)
    parser.add_argument("--inference-port", type=int, default=defaults.inference)
    parser.add_argument("--model-sync-port", type=int, default=defaults.model_sync)
    parser.add_argument(
        "--serve",
        choices=("auto", "yes", "no"),
        default="auto",
        help="keep the stack up until Ctrl-C (auto: only when run from a terminal)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    ports = StackPorts(args.gateway_port, args.inference_port, args.model_sync_port)
    try:
        check_ports(args.mlflow_port, ports)
    except PortTaken as exc:
        log.error("%s", exc)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        return _run(args, ports)
    except KeyboardInterrupt as exc:
        sys.stdout.write(f"\nstopped ({exc or 'SIGINT'}); every process it started is stopped\n")
        return 130


def _run(args: argparse.Namespace, ports: StackPorts) -> int:
    started = time.monotonic()
    with ExitStack() as stack:
        stack.callback(log.info, "stopping the processes the demo started")
        tracking_uri, webhooks = ensure_mlflow(stack, args.mlflow_port)
        try:
            run_pipeline(tracking_uri)
        except subprocess.CalledProcessError as exc:
            log.error("the pipeline failed (exit %s); see the stage output above", exc.returncode)
            return 1
        sys.stdout.write(summary(tracking_uri) + "\n")
        log.info("starting model-sync, inference and gateway (logs in %s/logs/)", STATE)
        model_name = json.loads(paths.REGISTRATION_FILE.read_text())["model_name"]
        # A secret made for this run: model-sync registers (or updates) its MLflow webhook.
        secret = secrets.token_hex(24) if webhooks else None
        if not webhooks:
            log.info("model-sync polls the registry (webhooks need the MLflow the demo starts)")
        ensure_challenger(tracking_uri, model_name)
        urls = start_serving(stack, tracking_uri, model_name, STATE, ports, webhook_secret=secret)
        sys.stdout.write(serving_summary(urls, model_name) + "\n")
        wait_for_shadow(urls["gateway"])
        samples, offered = predict_samples(urls["gateway"])
        sys.stdout.write(samples + shadow_summary(urls["gateway"], offered) + "\n")
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
