"""The baseline: the obvious FastAPI + onnxruntime server, written as a first attempt would be.

One ``onnxruntime.InferenceSession`` with one intra-op thread, a plain ``def`` route (FastAPI
runs it in its thread pool), one ``session.run`` per request, no batching, no binary framing:
the request body is the model input's raw bytes, one image of the served manifest's shape
(``[1, H, W, C]`` uint8 for NHWC), and the answer is the probabilities as JSON. It serves the
same ``model.onnx`` as the inference service (a guarded graph computes its guard whether or not
its outputs are asked for: onnxruntime runs the whole graph). Run by uvicorn with its defaults,
access log off. Run as a script: ``naive_server.py --package DIR --port N``; serves until
terminated.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Annotated

import numpy as np
import onnxruntime as ort
import uvicorn
from brainscan_manifest.verify import load_package
from fastapi import Body, FastAPI, HTTPException


def create_app(package: Path) -> FastAPI:
    onnx_path, manifest = load_package(package)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    spec = manifest.input
    shape = spec.shape(1)
    expected = int(np.prod(shape))
    probabilities = manifest.outputs.probabilities
    app = FastAPI()

    @app.get("/ready")
    def ready() -> dict:
        return {"ready": True}

    @app.post("/predict")
    def predict(body: Annotated[bytes, Body(media_type="application/octet-stream")]) -> dict:
        if len(body) != expected:
            raise HTTPException(400, f"expected {expected} bytes of uint8 pixels {shape}")
        image = np.frombuffer(body, np.uint8).reshape(shape)
        if spec.dtype == "float32":
            image = image.astype(np.float32) * spec.scale + spec.offset
        (result,) = session.run([probabilities], {spec.name: image})
        return {"probabilities": result[0].tolist()}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--package", type=Path, required=True, help="model.onnx + manifest.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.package), host=args.host, port=args.port, access_log=False)


if __name__ == "__main__":
    main()
