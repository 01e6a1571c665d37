"""The feedback window: bounded by count, bytes and time, bound to the client that asked."""

import pytest
from brainscan_gateway.feedback.window import Answered, FeedbackWindow, Gone, NotHeld
from PIL import Image


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def answered(side: int = 10, client: str = "ip:1", mode: str = "L") -> Answered:
    return Answered(
        client=client,
        image=Image.new(mode, (side, side)),
        model_name="m",
        model_version="1",
        model_role="production",
        label="glioma",
        confidence=0.9,
        classes=("glioma", "notumor"),
        assessed=True,
        answered_at=0.0,
    )


def window(clock=None, **bounds) -> FeedbackWindow:
    options = {"window_seconds": 60.0, "max_pending": 3, "max_bytes": 10_000, **bounds}
    return FeedbackWindow(clock=clock or Clock(), **options)


def gone(window: FeedbackWindow, request_id: str, client: str = "ip:1") -> Gone | None:
    with pytest.raises(NotHeld) as raised:
        window.claim(request_id, client)
    return raised.value.gone


def test_a_held_prediction_is_claimed_once_then_answers_given():
    held = window()
    entry = answered()
    held.hold("r1", entry)
    assert held.claim("r1", "ip:1") is entry
    assert len(held) == 0 and held.nbytes == 0  # the pixels are dropped at once
    assert gone(held, "r1") is Gone.GIVEN


def test_unknown_and_other_clients_get_nothing():
    held = window()
    held.hold("r1", answered(client="key:a"))
    assert gone(held, "nope") is None
    assert gone(held, "r1", client="key:b") is None  # as if unknown: no hint it exists
    assert held.claim("r1", "key:a").client == "key:a"


def test_after_the_window_it_has_expired():
    clock = Clock()
    held = window(clock)
    held.hold("r1", answered())
    clock.now = 59.0
    held.hold("r2", answered())
    clock.now = 60.5
    assert gone(held, "r1") is Gone.EXPIRED
    assert held.claim("r2", "ip:1")  # still within its own window


def test_count_bound_drops_the_oldest():
    held = window(max_pending=2)
    for request_id in ("r1", "r2", "r3"):
        held.hold(request_id, answered())
    assert len(held) == 2
    assert gone(held, "r1") is Gone.EVICTED


def test_byte_bound_drops_the_oldest_and_refuses_an_image_over_it():
    changes = []
    held = window(max_bytes=250, max_pending=10, on_change=lambda n, b: changes.append((n, b)))
    held.hold("r1", answered(10))  # 100 bytes (L)
    held.hold("r2", answered(10))
    held.hold("r3", answered(10))  # 300 > 250: r1 goes
    assert (len(held), held.nbytes) == (2, 200)
    assert gone(held, "r1") is Gone.EVICTED
    assert held.hold("big", answered(10, mode="RGB")) is False  # 300 bytes alone
    assert gone(held, "big") is None
    assert changes[-1] == (2, 200)


def test_a_released_claim_can_be_given_again():
    held = window()
    entry = answered()
    held.hold("r1", entry)
    held.claim("r1", "ip:1")
    held.release("r1", entry)
    assert held.claim("r1", "ip:1") is entry


def test_only_request_ids_are_remembered_and_boundedly():
    held = window(max_pending=1)
    for index in range(20):
        held.hold(f"r{index}", answered())
    assert len(held._gone) == 4  # 4 x max_pending, ids and reasons only
    assert all(isinstance(why, Gone) for why in held._gone.values())
