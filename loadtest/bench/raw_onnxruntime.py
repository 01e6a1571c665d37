"""The limit: onnxruntime in-process, no HTTP, same session options as the service.

The options are read from ``INFERENCE_*`` like the service's, so an A/B of a setting can set it
here too. Run as a script: prints one JSON line with images/s and CPU milliseconds per image
(all threads of the process), per batch size, one value per repeat.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from brainscan_inference.session import create_session
from brainscan_inference.settings import InferenceSettings
from brainscan_manifest.verify import load_package


def measure(session, input_name: str, images: np.ndarray, seconds: float) -> tuple[float, float]:
    """Images per second of back-to-back calls over ``seconds``, and CPU ms per image."""
    session.run(None, {input_name: images})  # not counted: first call at this batch size
    calls = 0
    cpu_started = time.process_time()
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        session.run(None, {input_name: images})
        calls += 1
    cpu = time.process_time() - cpu_started
    return calls * len(images) / elapsed, 1000 * cpu / (calls * len(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--package", type=Path, required=True)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    onnx_path, manifest = load_package(args.package)
    session = create_session(onnx_path, InferenceSettings())  # the service's defaults
    rng = np.random.default_rng(0)
    shape = manifest.input.shape(1)[1:]
    results: dict[str, dict[int, list[float]]] = {"throughput": {}, "cpu_ms_per_image": {}}
    for batch in args.batches:
        images = rng.integers(0, 256, (batch, *shape), dtype=np.uint8)
        if manifest.input.dtype == "float32":
            images = images.astype(np.float32) * manifest.input.scale + manifest.input.offset
        repeats = [
            measure(session, manifest.input.name, images, args.seconds) for _ in range(args.repeats)
        ]
        results["throughput"][batch] = [throughput for throughput, _ in repeats]
        results["cpu_ms_per_image"][batch] = [cpu for _, cpu in repeats]
    sys.stdout.write(json.dumps(results) + "\n")  # the result, for run.py


if __name__ == "__main__":
    main()
