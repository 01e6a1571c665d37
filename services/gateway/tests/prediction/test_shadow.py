"""Mirroring answered predictions to the challenger in shadow, and what is recorded.

A real inference service holds the challenger from a local challenger directory (the
model-sync source does the same from the registry's alias: services/model-sync/tests), and a
real gateway mirrors to it over loopback.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from brainscan_gateway.imaging.decoding import DecodedImage
from brainscan_gateway.imaging.upload_format import UploadFormat
from brainscan_gateway.metrics import GatewayMetrics
from brainscan_gateway.prediction.distribution_check import DistributionCheck
from brainscan_gateway.prediction.preparation import prepare_for
from brainscan_gateway.prediction.shadow import ChampionAnswer, ShadowMirror
from brainscan_gateway.upstream.client import InferenceClient
from brainscan_testsupport.onnx_models import CLASSES
from gateway_images import mri_like, png_bytes
from gateway_servers import MODEL_NAME
from gateway_shadow import ROTATED, eventually, metric, model_info, predict, shadow_of
from PIL import Image


def test_a_challenger_that_agrees_is_compared_on_every_answer_and_never_answers(shadow_stack):
    gateway = shadow_stack.gateway()
    assert model_info(gateway)["shadow"] is None  # no challenger yet: nothing mirrored
    shadow_stack.challenge("2")
    eventually(lambda: shadow_of(gateway, "2"), "the gateway mirroring to version 2")

    answers = [predict(gateway, size) for size in (48, 64, 80, 96, 112)]
    assert {answer["model"]["version"] for answer in answers} == {"1"}  # never the challenger
    shadow = eventually(
        lambda: (s := shadow_of(gateway, "2")) and s["mirrored"] == 5 and s, "5 pairs compared"
    )
    labels = [answer["label"] for answer in answers]
    assert shadow["agreed"] == 5 and shadow["agreement"] == 1.0
    assert shadow["dropped"] == 0 and shadow["failed"] == 0 and shadow["fraction"] == 1.0
    assert shadow["confusion"] == {label: {label: labels.count(label)} for label in set(labels)}
    assert shadow["distribution"] == {"unavailable": {"unavailable": 5}}  # no guard in either
    assert metric(gateway, "gateway_shadow_pairs_total", challenger_version="2") == 5
    assert metric(gateway, "gateway_shadow_agreed_total", challenger_version="2") == 5
    for role in ("champion", "challenger"):
        assert metric(gateway, "gateway_shadow_inference_duration_seconds_count", role=role) == 5


def test_a_challenger_with_rotated_classes_shows_in_the_matrix(shadow_stack):
    shadow_stack.challenge("2", ROTATED)
    gateway = shadow_stack.gateway()
    eventually(lambda: shadow_of(gateway, "2"), "the gateway mirroring to version 2")
    labels = [predict(gateway, size)["label"] for size in (48, 64, 80, 96)]
    shadow = eventually(
        lambda: (s := shadow_of(gateway, "2")) and s["mirrored"] == 4 and s, "4 pairs compared"
    )
    assert shadow["agreed"] == 0 and shadow["agreement"] == 0.0
    rotated = dict(zip(CLASSES, ROTATED, strict=True))
    expected = {label: {rotated[label]: labels.count(label)} for label in set(labels)}
    assert shadow["confusion"] == expected
    for label in set(labels):
        pairs = metric(
            gateway,
            "gateway_shadow_pairs_total",
            champion_version="1",
            challenger_version="2",
            champion_label=label,
            challenger_label=rotated[label],
        )
        assert pairs == labels.count(label)


def test_a_challenger_with_another_input_size_gets_the_upload_resized_for_it(shadow_stack):
    shadow_stack.challenge("2", size=8)  # the served model takes 16x16
    gateway = shadow_stack.gateway()
    eventually(lambda: shadow_of(gateway, "2"), "the gateway mirroring to version 2")
    for size in (48, 64, 80):
        predict(gateway, size)
    shadow = eventually(
        lambda: (s := shadow_of(gateway, "2")) and s["mirrored"] == 3 and s, "3 pairs compared"
    )
    assert shadow["failed"] == 0 and shadow["dropped"] == 0


def test_answers_never_fail_while_the_challenger_comes_moves_goes_and_is_promoted(shadow_stack):
    gateway = shadow_stack.gateway()
    stop = threading.Event()
    statuses: list[int] = []
    versions: list[str] = []

    def stream() -> None:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            while not stop.is_set():
                answer = client.post("/api/v1/predictions", files={"file": ("s.png", png_bytes())})
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    versions.append(answer.json()["model"]["version"])

    with ThreadPoolExecutor(2) as pool:
        streams = [pool.submit(stream) for _ in range(2)]
        try:
            shadow_stack.challenge("2")
            eventually(lambda: shadow_of(gateway, "2"), "mirroring to version 2")
            eventually(lambda: shadow_of(gateway, "2")["mirrored"] >= 3, "pairs with 2")
            shadow_stack.challenge("3", ROTATED)  # moved
            eventually(lambda: shadow_of(gateway, "3"), "mirroring to version 3")
            eventually(lambda: shadow_of(gateway, "3")["mirrored"] >= 3, "pairs with 3")
            shadow_stack.withdraw()
            eventually(lambda: model_info(gateway)["shadow"] is None, "mirroring stopped")
            mirrored = metric(gateway, "gateway_shadow_pairs_total")
            time.sleep(0.5)  # answers go on...
            # ...and none was mirrored once it was gone (a pair in flight may still land).
            assert metric(gateway, "gateway_shadow_pairs_total") <= mirrored + 2

            shadow_stack.challenge("4")
            eventually(lambda: shadow_of(gateway, "4"), "mirroring to version 4")
            shadow_stack.promote("4")
            eventually(lambda: versions[-1] == "4", "answers from the promoted version 4")
            eventually(lambda: model_info(gateway)["shadow"] is None, "4 no longer in shadow")
        finally:
            stop.set()
            for each in streams:
                each.result()
    assert statuses and set(statuses) == {200}
    assert set(versions) == {"1", "4"}  # never a challenger's answer while it was one


def test_a_failing_challenger_never_affects_an_answer(shadow_stack):
    """Mirrored calls time out (0.1 ms): the first failure opens the challenger's own circuit,
    later ones are dropped at once; the answers' circuit stays closed and every answer is
    served. (On a loaded machine the event loop may read an answer before a 0.1 ms timer fires,
    so a pair may still be compared: every offer is accounted for either way.)"""
    shadow_stack.challenge("2")
    # The circuit stays open for the whole test: on a slow machine a second's wait would let
    # each mirrored call through as a probe.
    gateway = shadow_stack.gateway(
        shadow_timeout=0.0001, breaker_failure_threshold=1, breaker_open_seconds=600
    )
    eventually(lambda: shadow_of(gateway, "2"), "the gateway mirroring to version 2")
    answers = [predict(gateway) for _ in range(8)]
    assert {answer["model"]["version"] for answer in answers} == {"1"}

    def accounted() -> dict | None:
        s = shadow_of(gateway, "2")
        return s if s and s["mirrored"] + s["failed"] + s["dropped"] == 8 else None

    shadow = eventually(accounted, "all 8 offers compared, failed or dropped")
    assert shadow["failed"] >= 1 or shadow["dropped"] >= 1
    assert (
        metric(gateway, "gateway_shadow_failed_total", reason="inference_timeout")
        + metric(gateway, "gateway_shadow_dropped_total", reason="circuit_open")
        >= 1
    )
    assert metric(gateway, "gateway_circuit_breaker_state", state="closed") == 1


def test_no_mirroring_when_the_fraction_is_zero(shadow_stack):
    shadow_stack.challenge("2")
    gateway = shadow_stack.gateway(shadow_fraction=0)
    predict(gateway)
    assert model_info(gateway)["shadow"] is None
    assert metric(gateway, "gateway_shadow_pairs_total") == 0


def offers(mirror: ShadowMirror, count: int) -> None:
    """``count`` answered predictions offered, as the predictor offers them."""
    champion = ChampionAnswer("1", "glioma", 0.9, DistributionCheck(in_distribution=None), 0.01)
    decoded = DecodedImage(Image.fromarray(mri_like(64)), UploadFormat.PNG)
    prepared = prepare_for(decoded, mirror.challenger.input)
    for _ in range(count):
        mirror.offer(prepared, champion, "request")


def with_mirror(url: str, check: Callable[[ShadowMirror, GatewayMetrics], None], **options):
    """Run ``check`` on a mirror that knows inference's challenger and runs no worker."""

    async def run() -> None:
        client = InferenceClient(url, MODEL_NAME)
        metrics = GatewayMetrics()
        values = {"fraction": 1.0, "queue_size": 3, "concurrency": 1, "refresh_seconds": 60}
        mirror = ShadowMirror(client, metrics, **{**values, **options})
        try:
            deadline = time.monotonic() + 20
            while mirror.challenger is None and time.monotonic() < deadline:
                await mirror.refresh()
                await asyncio.sleep(0.05)
            check(mirror, metrics)
        finally:
            await client.aclose()

    asyncio.run(run())


def test_offers_beyond_the_queue_are_dropped_and_counted(shadow_stack):
    """With no worker taking from it, the queue holds ``queue_size`` offers and drops the rest:
    mirrored work waits in a bounded queue, never an unbounded one."""
    shadow_stack.challenge("2")

    def check(mirror: ShadowMirror, metrics: GatewayMetrics) -> None:
        offers(mirror, 10)
        sample = metrics.registry.get_sample_value
        assert sample("gateway_shadow_dropped_total", {"reason": "queue_full"}) == 7
        assert sample("gateway_shadow_queue_depth") == 3
        assert mirror.report()["dropped"] == 7 and mirror.report()["mirrored"] == 0

    with_mirror(shadow_stack.inference.url, check)


def test_a_fraction_mirrors_that_share_of_the_offers(shadow_stack):
    shadow_stack.challenge("2")
    draws = iter([0.1, 0.6, 0.29, 0.3, 0.95])  # below 0.3 is mirrored

    def check(mirror: ShadowMirror, metrics: GatewayMetrics) -> None:
        offers(mirror, 5)
        assert metrics.registry.get_sample_value("gateway_shadow_queue_depth") == 2

    with_mirror(shadow_stack.inference.url, check, fraction=0.3, queue_size=10,
                sample=lambda: next(draws))  # fmt: skip


def test_mirroring_gives_way_while_the_gateway_is_busy_answering(shadow_stack):
    """More answers in flight than mirroring runs beside: offers are dropped, not queued."""
    shadow_stack.challenge("2")
    busy = iter([True, True, False])

    def check(mirror: ShadowMirror, metrics: GatewayMetrics) -> None:
        offers(mirror, 3)
        sample = metrics.registry.get_sample_value
        assert sample("gateway_shadow_dropped_total", {"reason": "answers_busy"}) == 2
        assert sample("gateway_shadow_queue_depth") == 1

    with_mirror(shadow_stack.inference.url, check, queue_size=10,
                answers_busy=lambda: next(busy))  # fmt: skip
