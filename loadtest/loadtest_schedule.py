"""The step schedule of the HPA load shape, as a plain function (no locust import: testable).

Steps up by ``step_users`` every ``step_seconds`` to ``max_users``, holds the peak, then steps
back down, so the autoscaler has time to add replicas on the way up (its CPU average spans
about a minute) and, after its 5-minute stabilisation window, to remove them on the way down.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class StepSchedule:
    step_users: int = 10
    step_seconds: float = 120.0
    max_users: int = 60
    hold_seconds: float = 300.0
    spawn_rate: float = 5.0
    ramp_down: bool = True

    @classmethod
    def from_env(cls) -> StepSchedule:
        """From LOADTEST_STEP_USERS, _STEP_SECONDS, _MAX_USERS, _HOLD_SECONDS, _SPAWN_RATE and
        _RAMP_DOWN; unset ones keep their defaults."""
        env = os.environ
        return cls(
            step_users=int(env.get("LOADTEST_STEP_USERS", cls.step_users)),
            step_seconds=float(env.get("LOADTEST_STEP_SECONDS", cls.step_seconds)),
            max_users=int(env.get("LOADTEST_MAX_USERS", cls.max_users)),
            hold_seconds=float(env.get("LOADTEST_HOLD_SECONDS", cls.hold_seconds)),
            spawn_rate=float(env.get("LOADTEST_SPAWN_RATE", cls.spawn_rate)),
            ramp_down=env.get("LOADTEST_RAMP_DOWN", "1") not in ("0", "false", "no"),
        )

    def __post_init__(self) -> None:
        if self.step_users < 1 or self.max_users < self.step_users:
            raise ValueError("need 1 <= step_users <= max_users")
        if self.step_seconds <= 0 or self.hold_seconds < 0 or self.spawn_rate <= 0:
            raise ValueError("step_seconds and spawn_rate must be > 0, hold_seconds >= 0")

    @property
    def steps(self) -> int:
        return math.ceil(self.max_users / self.step_users)

    @property
    def duration(self) -> float:
        up = self.steps * self.step_seconds
        down = (self.steps - 1) * self.step_seconds if self.ramp_down else 0.0
        return up + self.hold_seconds + down

    def users_at(self, seconds: float) -> int | None:
        """How many users should run ``seconds`` into the test; None once it is over."""
        if seconds >= self.duration:
            return None
        up = self.steps * self.step_seconds
        if seconds < up:
            step = int(seconds // self.step_seconds) + 1
        elif seconds < up + self.hold_seconds:
            step = self.steps
        else:
            step = self.steps - 1 - int((seconds - up - self.hold_seconds) // self.step_seconds)
        return min(self.max_users, step * self.step_users)
