"""/metrics: request counts and latency by outcome, batch sizes, queue, loads, model info."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def scrape(server) -> dict[tuple[str, tuple], float]:
    response = httpx.get(f"{server.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_what_happened(server, images) -> None:
    url = f"{server.url}/v2/models/tiny/infer"
    image = images(2)
    body = {
        "inputs": [
            {
                "name": "image",
                "shape": [2, 8, 8, 3],
                "datatype": "UINT8",
                "data": image.ravel().tolist(),
            }
        ]
    }
    for _ in range(3):
        assert httpx.post(url, json=body).status_code == 200
    assert httpx.post(url, json={"inputs": []}).status_code == 400

    samples = scrape(server)
    ok = (("model", "tiny"), ("outcome", "success"), ("version", "1"))
    assert samples[("brainscan_inference_requests_total", ok)] == 3
    assert samples[("brainscan_inference_request_duration_seconds_count", ok)] == 3
    bad = (("model", "tiny"), ("outcome", "client_error"), ("version", "1"))
    assert samples[("brainscan_inference_requests_total", bad)] == 1
    model = (("model", "tiny"), ("version", "1"))
    # warm-up batches are not counted: only the three requests of two images each
    assert samples[("brainscan_inference_batch_size_count", model)] == 3
    assert samples[("brainscan_inference_batch_size_sum", model)] == 6
    assert samples[("brainscan_inference_model_run_duration_seconds_count", model)] == 3
    assert samples[("brainscan_inference_queue_depth", ())] == 0
    assert samples[("brainscan_inference_ready", ())] == 1
    loaded = (("model", "tiny"), ("outcome", "loaded"))
    assert samples[("brainscan_inference_model_loads_total", loaded)] == 1
    info = [k for k in samples if k[0] == "brainscan_inference_model_info"]
    assert len(info) == 1
    labels = dict(info[0][1])
    assert labels["name"] == "tiny" and labels["version"] == "1" and len(labels["sha256"]) == 64
