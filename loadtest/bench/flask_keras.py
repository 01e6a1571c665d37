"""The baseline: the original design, a Flask app calling Keras ``model.predict`` per request.

It takes the same binary v2 request as the inference service (so the same client drives both)
and answers the probabilities as JSON. Run as a script: serves until terminated.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from flask import Flask, Response, request


def create_app(keras_file: str) -> Flask:
    model = keras.models.load_model(keras_file, compile=False)
    height, width, channels = model.input_shape[1:]
    model.predict(np.zeros((1, height, width, channels), np.float32), verbose=0)
    app = Flask(__name__)

    @app.post("/predict")
    def predict() -> Response:
        body = request.get_data()
        header_length = int(request.headers["Inference-Header-Content-Length"])
        header = json.loads(body[:header_length])
        shape = header["inputs"][0]["shape"]
        pixels = np.frombuffer(body[header_length:], np.uint8).reshape(shape)
        probabilities = model.predict(pixels.astype(np.float32), verbose=0)
        return Response(
            json.dumps({"probabilities": probabilities.tolist()}), mimetype="application/json"
        )

    @app.get("/ready")
    def ready() -> str:
        return "ok"

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keras", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    create_app(args.keras).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
