"""The step schedule of the HPA load shape."""

from __future__ import annotations

import pytest
from loadtest_schedule import StepSchedule


def test_steps_up_holds_and_steps_down():
    schedule = StepSchedule(step_users=10, step_seconds=60, max_users=30, hold_seconds=120)
    samples = {t: schedule.users_at(t) for t in (0, 59, 60, 125, 179, 180, 299, 300, 359, 360)}
    assert samples == {
        0: 10, 59: 10, 60: 20, 125: 30, 179: 30,  # up: 3 steps of 60 s
        180: 30, 299: 30,  # hold 120 s
        300: 20, 359: 20, 360: 10,  # down
    }  # fmt: skip
    assert schedule.duration == 3 * 60 + 120 + 2 * 60
    assert schedule.users_at(schedule.duration) is None
    assert schedule.users_at(schedule.duration - 0.1) == 10


def test_the_last_step_is_capped_at_the_peak():
    schedule = StepSchedule(step_users=25, step_seconds=10, max_users=60, hold_seconds=0)
    assert [schedule.users_at(t) for t in (0, 10, 20)] == [25, 50, 60]


def test_without_ramp_down_it_ends_after_the_hold():
    schedule = StepSchedule(
        step_users=5, step_seconds=10, max_users=10, hold_seconds=30, ramp_down=False
    )
    assert schedule.duration == 50
    assert schedule.users_at(49) == 10 and schedule.users_at(50) is None


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("LOADTEST_STEP_USERS", "4")
    monkeypatch.setenv("LOADTEST_MAX_USERS", "8")
    monkeypatch.setenv("LOADTEST_RAMP_DOWN", "false")
    schedule = StepSchedule.from_env()
    assert (schedule.step_users, schedule.max_users, schedule.ramp_down) == (4, 8, False)


@pytest.mark.parametrize(
    "kwargs", [{"step_users": 0}, {"max_users": 5, "step_users": 10}, {"step_seconds": 0}]
)
def test_impossible_schedules_are_refused(kwargs):
    with pytest.raises(ValueError):
        StepSchedule(**kwargs)
