"""Hot swap under concurrent load: no failed request, and a bad model never replaces a good one."""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict

import httpx
import orjson


def load_generator(url: str, image: bytes, stop: threading.Event, log: list) -> None:
    """One client sending binary requests back to back on a kept-alive connection."""
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1, 8, 8, 3],
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": len(image)},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    )
    headers = {"Inference-Header-Content-Length": str(len(header))}
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            response = client.post(url, content=header + image, headers=headers)
            length = int(
                response.headers.get("inference-header-content-length", len(response.content))
            )
            version = orjson.loads(response.content[:length]).get("model_version")
            log.append((response.status_code, version))


def publish(staging_root, models_dir, version: str, package_factory, **options) -> None:
    """Write a package aside, then move it into place in one rename (as a deployment would)."""
    staging = staging_root / f"staging-{version}"
    package_factory(staging, **options)
    os.rename(staging, models_dir / version)


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_swap_under_load_fails_no_request_and_refused_models_change_nothing(
    serve, settings_factory, model_dir, tmp_path, package_factory, images
) -> None:
    server = serve(settings_factory(model_dir, model_poll_interval=0.05))
    slot = server.app.state.model_slot
    url = f"{server.url}/v2/models/tiny/infer"
    stop = threading.Event()
    logs: list[list] = [[] for _ in range(6)]
    clients = [
        threading.Thread(target=load_generator, args=(url, images(1).tobytes(), stop, log))
        for log in logs
    ]
    for client in clients:
        client.start()
    try:
        wait_until(lambda: sum(map(len, logs)) > 50)
        publish(tmp_path, model_dir, "2", package_factory, seed=11)
        wait_until(lambda: slot.current.version == "2")
        wait_until(lambda: all(log and log[-1][1] == "2" for log in logs))

        # Bad packages, each a higher version, so the source offers each in turn.
        publish(tmp_path, model_dir, "3", package_factory, num_outputs=3)
        wait_until(lambda: slot.last_outcome.version == "3")
        staging = tmp_path / "staging-4"
        package_factory(staging, seed=12)
        model = staging / "model.onnx"
        model.write_bytes(model.read_bytes()[:100])  # truncated after the manifest was written
        os.rename(staging, model_dir / "4")
        wait_until(lambda: slot.last_outcome.version == "4")
        count_before = sum(map(len, logs))
        wait_until(lambda: sum(map(len, logs)) > count_before + 50)
    finally:
        stop.set()
        for client in clients:
            client.join(30)

    statuses = defaultdict(int)
    for log in logs:
        for status, _ in log:
            statuses[status] += 1
    assert dict(statuses) == {200: sum(map(len, logs))}, "a request failed during the swap"
    for log in logs:
        versions = [version for _, version in log]
        assert set(versions) <= {"1", "2"}
        first_new = versions.index("2")
        assert set(versions[first_new:]) == {"2"}, "a client went back to the old model"
    assert slot.current.version == "2"
    assert slot.last_outcome.state == "refused"
    assert "sha256 mismatch" in slot.last_outcome.reason
    samples = server.app.state.metrics.registry.get_sample_value
    assert (
        samples("brainscan_inference_model_loads_total", {"model": "tiny", "outcome": "loaded"})
        == 2
    )
    assert (
        samples("brainscan_inference_model_loads_total", {"model": "tiny", "outcome": "refused"})
        == 2
    )


def test_a_broken_newest_version_does_not_keep_a_good_older_one_from_serving(
    serve, settings_factory, tmp_path, package_factory, images
) -> None:
    models = tmp_path / "models"
    package_factory(models / "2")
    # Version 3's CAM weights do not fit its feature map: refused at warm-up.
    package_factory(
        models / "3",
        seed=3,
        feature_map_shape=["N", "h", "w", "k"],
        cam_weights=[[1.0] * 4] * 6,
    )
    server = serve(settings_factory(models, model_name="tiny"))
    assert httpx.get(f"{server.url}/v2/models/tiny").json()["versions"] == ["2"]
    batch = images(1)
    body = {
        "inputs": [
            {
                "name": "image",
                "shape": list(batch.shape),
                "datatype": "UINT8",
                "data": batch.ravel().tolist(),
            }
        ],
        "parameters": {"activation_map": True},
    }
    assert httpx.post(f"{server.url}/v2/models/tiny/infer", json=body).status_code == 200
    refused = server.app.state.metrics.registry.get_sample_value(
        "brainscan_inference_model_loads_total", {"model": "tiny", "outcome": "refused"}
    )
    assert refused == 1
    last = server.app.state.model_slot.last_outcome
    assert last.version == "3" and "activation map" in last.reason
