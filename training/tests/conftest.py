"""Fixtures shared by the training tests: a real MLflow server on a free port."""

from __future__ import annotations

import uuid

import pytest
from brainscan_localstack.mlflow_server import MlflowServer


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """One real `mlflow server` (sqlite + local artifacts) for the session, always stopped."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tracking(mlflow_server, monkeypatch):
    """Point MLflow (client and our code) at the test server for one test."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    mlflow.set_tracking_uri(mlflow_server.url)
    yield mlflow_server.url
    mlflow.set_tracking_uri(None)


@pytest.fixture
def model_name():
    """A registered model name no other test uses."""
    return f"test-model-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def trained_tiny_model():
    """A small MobileNetV2 trained for real on quadrant images, so its outputs are not uniform."""
    import keras
    import numpy as np
    from brainscan_testsupport.onnx_models import quadrant_image
    from brainscan_training.model import build_model

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = np.arange(320) % 4
    images = np.stack([quadrant_image(int(label), rng, size=32) for label in labels])
    model = build_model(4, image_size=32, alpha=0.35, dropout=0.1)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(images.astype("float32"), labels, epochs=4, batch_size=32, verbose=0)
    return model, images, labels
