"""Pixel work (decode, preprocess, overlay) runs off the event loop, a bounded number at once.

A gate wraps the real function and holds each call until the test opens it, so the tests
assert what happens while pixel work is in progress, without depending on how long it takes.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from brainscan_gateway.imaging import overlay
from brainscan_gateway.prediction import predictor, preparation
from gateway_images import png_bytes


class Gate:
    """Calls ``function`` only once opened; counts the calls inside at once."""

    def __init__(self, function) -> None:
        self.function = function
        self.opened = threading.Event()
        self.calls = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0

    def __call__(self, *args, **kwargs):
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.calls.release()
        try:
            self.opened.wait(timeout=60)
            return self.function(*args, **kwargs)
        finally:
            with self._lock:
                self.inside -= 1


def predict(url: str, explain: bool = False) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/predictions",
        files={"file": ("a.png", png_bytes(64))},
        params={"explain": "true"} if explain else {},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("module", "name", "explain"),
    [
        (predictor, "decode_upload", False),
        (preparation, "to_input_array", False),
        (overlay, "overlay", True),
    ],
    ids=["decode", "preprocess", "overlay"],
)
def test_health_answers_while_pixel_work_is_held(
    monkeypatch, inference, start_gateway, module, name, explain
):
    gate = Gate(getattr(module, name))
    monkeypatch.setattr(module, name, gate)
    gateway = start_gateway(inference.url)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(predict, gateway.url, explain)
        try:
            assert gate.calls.acquire(timeout=30), "the prediction never reached the gate"
            # Held inside its pixel work, the prediction must not hold up the event loop.
            # (The timeout only keeps a blocked loop from hanging the suite.)
            health = httpx.get(f"{gateway.url}/healthz", timeout=10)
            assert health.status_code == 200
            assert gate.inside == 1 and not pending.done()
        finally:
            gate.opened.set()
        assert pending.result().status_code == 200


def test_pixel_work_waits_for_a_free_slot(monkeypatch, inference, start_gateway):
    gate = Gate(predictor.decode_upload)
    monkeypatch.setattr(predictor, "decode_upload", gate)
    gateway = start_gateway(inference.url, max_concurrent_decodes=1)
    slots = gateway.server.config.app.state.predictor.image_work_slots
    with ThreadPoolExecutor(3) as pool:
        pending = [pool.submit(predict, gateway.url) for _ in range(3)]
        try:
            assert gate.calls.acquire(timeout=30)
            deadline = time.monotonic() + 30
            while slots.statistics().tasks_waiting < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            # Two uploads queue for the one slot while the first decode is held.
            assert slots.statistics().tasks_waiting == 2
            assert gate.inside == 1
        finally:
            gate.opened.set()
        assert [p.result().status_code for p in pending] == [200, 200, 200]
    assert gate.most_inside == 1
