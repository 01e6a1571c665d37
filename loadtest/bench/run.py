"""`make bench`: the inference service against its limit and against the design it replaces.

Prints one table, every figure from this run on this machine, medians over repeated windows:

- raw onnxruntime in-process (batch 1, 8, 32): the limit;
- the service over loopback, binary tensors, concurrency 1, 8, 32;
- the gateway end to end in front of that service: 512x512 JPEG uploads (a generated MRI-like
  slice) as multipart forms, concurrency 1, 8, 32: decode, resize, a second HTTP hop, thresholds;
- a Flask app calling Keras ``model.predict`` per request (the original design), same client;
- the service's and the gateway's resident memory, after the load.

Each server and the load generator run in their own processes; nothing else should run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PYTHON = sys.executable

# Peers measured on this machine with the same model and client (issue 3).
BENTOML_THROUGHPUT = 130.0
BENTOML_P99_AT_32_MS = 360.0
MEMORY_LIMIT_MB = 300.0
# Targets for the gateway at concurrency 8 (issue 5).
GATEWAY_SHARE_OF_LIMIT = 0.4
GATEWAY_P99_MS = 150.0
UPLOAD_SIDE = 512


def log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def run_json(args: list[str], timeout: float, env: dict | None = None):
    """Run a helper script and parse the JSON line it prints last."""
    done = subprocess.run(
        [PYTHON, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http_ok(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout} s")


@contextmanager
def server(args: list[str], env: dict, ready_url: str, log_file: Path, timeout: float):
    with open(log_file, "wb") as sink:
        process = subprocess.Popen([PYTHON, *args], env=env, stdout=sink, stderr=sink)
        try:
            wait_http_ok(ready_url, process, timeout)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident set size now and its peak (VmHWM), in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def request_body(manifest: dict, workdir: Path) -> tuple[Path, list[str]]:
    """One binary v2 request for one image, as the gateway sends it."""
    spec = manifest["input"]
    shape = [1, spec["height"], spec["width"], spec.get("channels", 3)]
    if spec.get("layout") == "NCHW":
        shape = [1, shape[3], shape[1], shape[2]]
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": spec["name"],
                    "shape": shape,
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": image.nbytes},
                }
            ],
            "outputs": [
                {"name": manifest["outputs"]["probabilities"], "parameters": {"binary_data": True}}
            ],
        }
    ).encode()
    path = workdir / "request.bin"
    path.write_bytes(header + image.tobytes())
    return path, [
        f"Inference-Header-Content-Length: {len(header)}",
        "Content-Type: application/octet-stream",
    ]


def upload_image(workdir: Path) -> Path:
    """A generated MRI-like slice (a glioma), UPLOAD_SIDE px square, as an RGB JPEG.

    RGB because the Kaggle data set's JPEGs are grey pictures stored with three channels.
    """
    from brainscan_training.data.synthetic import render_example
    from PIL import Image

    rendered = render_example("glioma", np.random.default_rng(5), image_size=UPLOAD_SIDE)
    path = workdir / "slice.jpg"
    Image.fromarray(rendered.image).convert("RGB").save(path, format="JPEG", quality=90)
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(
    url: str, source: list[str], concurrency: int, opts, watch: dict[str, int] | None = None
) -> dict:
    """Median throughput and latencies over the repeats of one closed-loop run.

    ``source``: the loadgen arguments saying what to send (``--body`` + headers, or ``--upload``).
    ``watch``: server processes (name -> pid) whose CPU time per answered request to report.
    """
    args = [str(HERE / "loadgen.py"), "--url", url, *source]
    args += ["--concurrency", str(concurrency), "--seconds", str(opts.seconds)]
    args += ["--repeats", str(opts.repeats), "--warmup", str(opts.warmup)]
    cpu_before = {name: cpu_seconds(pid) for name, pid in (watch or {}).items()}
    repeats = run_json(args, timeout=opts.warmup + opts.repeats * opts.seconds + 120)
    answered = max(1, repeats[-1]["answered_in_run"])
    cpu_ms = {
        name: 1000 * (cpu_seconds(pid) - cpu_before[name]) / answered
        for name, pid in (watch or {}).items()
    }
    result = {
        key: statistics.median(r[key] for r in repeats if r[key] is not None)
        for key in ("throughput", "p50_ms", "p99_ms")
        if any(r[key] is not None for r in repeats)
    }
    result["errors"] = sum(r["errors"] for r in repeats)
    result["cpu_ms_per_request"] = cpu_ms
    return result


def tensor_source(body: Path, headers: list[str]) -> list[str]:
    source = ["--body", str(body)]
    for header in headers:
        source += ["--header", header]
    return source


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def table(
    raw: dict,
    service: dict,
    gateway: dict,
    flask: dict,
    memory: dict[str, tuple[float, float]],
    info: dict,
) -> str:
    limit = max(statistics.median(v) for v in raw.values())
    raw_b1_ms = 1000 / statistics.median(raw["1"])
    rows = [
        "| setup | load | images/s | p50 ms | p99 ms | × raw limit | × Flask+Keras | targets |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for batch, values in raw.items():
        throughput = statistics.median(values)
        call_ms = 1000 * int(batch) / throughput
        rows.append(
            f"| raw onnxruntime, in-process | batch {batch} | {fmt(throughput)} | {fmt(call_ms, 2)}"
            f" | — | {throughput / limit:.2f} | — | one call per batch |"
        )
    for concurrency, result in service.items():
        throughput = result.get("throughput", 0.0)
        baseline = flask.get(concurrency, {}).get("throughput")
        versus_flask = throughput / baseline if baseline else None
        notes = []
        if concurrency == 1:
            gap = result["p50_ms"] - raw_b1_ms
            notes.append(f"p50 − raw batch-1 call = {gap:+.2f} ms (≤ 2: {mark(gap <= 2)})")
        if concurrency == 8:
            notes.append(f"≥ 0.75 × limit: {mark(throughput >= 0.75 * limit)}")
        if concurrency in (8, 32):
            notes.append(
                f"≥ 1.5 × BentoML {BENTOML_THROUGHPUT:.0f}/s: "
                f"{mark(throughput >= 1.5 * BENTOML_THROUGHPUT)}"
            )
        if concurrency == 32:
            notes.append(
                f"p99 < BentoML {BENTOML_P99_AT_32_MS:.0f} ms: "
                f"{mark(result['p99_ms'] < BENTOML_P99_AT_32_MS)}"
            )
        if versus_flask is not None:
            notes.append(f"≥ 10 × Flask+Keras: {mark(versus_flask >= 10)}")
        if result["errors"]:
            notes.append(f"{result['errors']} failed requests")
        rows.append(
            f"| inference service, HTTP binary | concurrency {concurrency} | {fmt(throughput)} | "
            f"{fmt(result.get('p50_ms'), 2)} | {fmt(result.get('p99_ms'), 2)} | "
            f"{throughput / limit:.2f} | {fmt(versus_flask)} | {'; '.join(notes)} |"
        )
    for concurrency, result in gateway.items():
        throughput = result.get("throughput", 0.0)
        notes = []
        if concurrency == 8:
            share_met = throughput / limit >= GATEWAY_SHARE_OF_LIMIT
            p99 = result.get("p99_ms")
            p99_met = p99 is not None and p99 <= GATEWAY_P99_MS
            notes.append(f"≥ {GATEWAY_SHARE_OF_LIMIT} × limit: {mark(share_met)}")
            notes.append(f"p99 ≤ {GATEWAY_P99_MS:.0f} ms: {mark(p99_met)}")
            notes.append(
                f"≥ BentoML {BENTOML_THROUGHPUT:.0f}/s on bare tensors: "
                f"{mark(throughput >= BENTOML_THROUGHPUT)}"
            )
        cpu = result["cpu_ms_per_request"]
        notes.append(
            f"CPU per request: gateway {cpu['gateway']:.1f} ms, inference {cpu['inference']:.1f} ms"
        )
        if result["errors"]:
            notes.append(f"{result['errors']} failed requests")
        rows.append(
            f"| gateway end to end, {UPLOAD_SIDE}×{UPLOAD_SIDE} JPEG upload | concurrency "
            f"{concurrency} | {fmt(throughput)} | {fmt(result.get('p50_ms'), 2)} | "
            f"{fmt(result.get('p99_ms'), 2)} | {throughput / limit:.2f} | — | {'; '.join(notes)} |"
        )
    for concurrency, result in flask.items():
        throughput = result.get("throughput", 0.0)
        notes = f"{result['errors']} failed requests" if result["errors"] else ""
        rows.append(
            f"| Flask + Keras predict (baseline) | concurrency {concurrency} | {fmt(throughput)} | "
            f"{fmt(result.get('p50_ms'), 2)} | {fmt(result.get('p99_ms'), 2)} | "
            f"{throughput / limit:.2f} | 1.00 | {notes} |"
        )
    rss, peak = memory["inference"]
    rows.append(
        f"| inference service, resident memory | one model, after the load | — | — | — | — | — | "
        f"RSS {rss:.0f} MB, peak {peak:.0f} MB (≤ {MEMORY_LIMIT_MB:.0f}: "
        f"{mark(peak <= MEMORY_LIMIT_MB)}) |"
    )
    if "gateway" in memory:
        rss, peak = memory["gateway"]
        rows.append(
            "| gateway, resident memory | after the load | — | — | — | — | — | "
            f"RSS {rss:.0f} MB, peak {peak:.0f} MB |"
        )
    header = (
        f"model: ONNX {info['onnx_origin']}; Keras {info['keras_origin']}. "
        f"{os.cpu_count()} CPUs, load generator on the same machine. "
        "Medians over repeats; images/s = requests/s for the HTTP rows (one image per request); "
        "the gateway rows include the inference service behind it, on the same cores."
    )
    return header + "\n\n" + "\n".join(rows)


def run_gateway(
    inference_url: str, model_name: str, workdir: Path, opts, inference_pid: int
) -> tuple[dict[int, dict], tuple[float, float]]:
    """The gateway as its own process in front of the running inference service, loaded with
    JPEG uploads; its results per concurrency and its memory after the load."""
    upload = upload_image(workdir)
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_INFERENCE_URL": inference_url,
        "GATEWAY_MODEL_NAME": model_name,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",  # one client sends everything here
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    base = f"http://127.0.0.1:{port}"
    results: dict[int, dict] = {}
    with server(
        ["-m", "brainscan_gateway"], env, f"{base}/readyz", workdir / "gateway.log", timeout=120
    ) as process:
        for concurrency in opts.concurrency:
            log(f"gateway, JPEG uploads, concurrency {concurrency}")
            results[concurrency] = load(
                f"{base}/api/v1/predictions",
                ["--upload", str(upload)],
                concurrency,
                opts,
                watch={"gateway": process.pid, "inference": inference_pid},
            )
        return results, memory_mb(process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement window")
    parser.add_argument("--repeats", type=int, default=3, help="windows per setting")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--skip-flask", action="store_true", help="leave the baseline out")
    parser.add_argument("--skip-gateway", action="store_true", help="leave the gateway out")
    parser.add_argument("--quick", action="store_true", help="1 s windows, 2 repeats (smoke)")
    opts = parser.parse_args()
    if opts.quick:
        opts.seconds, opts.repeats, opts.warmup = 1.0, 2, 0.5

    with tempfile.TemporaryDirectory(prefix="brainscan-bench-") as scratch:
        workdir = opts.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        log("preparing the model (builds and exports one if the pipeline has not)")
        info = run_json(
            [str(HERE / "prepare_model.py"), "--repo", str(REPO), "--workdir", str(workdir)],
            timeout=900,
        )
        package = Path(info["package_dir"])
        manifest = json.loads((package / "manifest.json").read_text())

        log("raw onnxruntime in-process")
        raw = run_json(
            [
                str(HERE / "raw_onnxruntime.py"),
                "--package",
                str(package),
                "--seconds",
                str(max(1.0, opts.seconds / 2)),
                "--repeats",
                str(opts.repeats),
            ],
            timeout=600,
        )
        body, headers = request_body(manifest, workdir)

        port = free_port()
        env = {
            **os.environ,
            "INFERENCE_MODEL_DIR": str(package.parent),
            "INFERENCE_HOST": "127.0.0.1",
            "INFERENCE_PORT": str(port),
            "INFERENCE_MODEL_POLL_INTERVAL": "0",
        }
        service: dict[int, dict] = {}
        gateway: dict[int, dict] = {}
        memory: dict[str, tuple[float, float]] = {}
        base = f"http://127.0.0.1:{port}"
        with server(
            ["-m", "brainscan_inference"],
            env,
            f"{base}/v2/health/ready",
            workdir / "service.log",
            timeout=120,
        ) as process:
            url = f"{base}/v2/models/{manifest['name']}/infer"
            for concurrency in opts.concurrency:
                log(f"inference service, concurrency {concurrency}")
                service[concurrency] = load(url, tensor_source(body, headers), concurrency, opts)
            memory["inference"] = memory_mb(process.pid)
            if not opts.skip_gateway:
                gateway, memory["gateway"] = run_gateway(
                    base, manifest["name"], workdir, opts, process.pid
                )

        flask: dict[int, dict] = {}
        if not opts.skip_flask:
            port = free_port()
            with server(
                [str(HERE / "flask_keras.py"), "--keras", info["keras_file"], "--port", str(port)],
                {**os.environ, "CUDA_VISIBLE_DEVICES": ""},
                f"http://127.0.0.1:{port}/ready",
                workdir / "flask.log",
                timeout=300,
            ):
                for concurrency in opts.concurrency:
                    log(f"Flask + Keras, concurrency {concurrency}")
                    flask[concurrency] = load(
                        f"http://127.0.0.1:{port}/predict",
                        tensor_source(body, headers),
                        concurrency,
                        opts,
                    )
        sys.stdout.write(table(raw, service, gateway, flask, memory, info) + "\n")


if __name__ == "__main__":
    main()
