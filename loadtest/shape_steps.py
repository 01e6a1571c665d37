"""Step load for driving the gateway's HorizontalPodAutoscaler (docs/loadtest.md).

Use with the users of locustfile.py:
    locust -f loadtest/locustfile.py,loadtest/shape_steps.py --headless -H https://GATEWAY
Steps are set with LOADTEST_STEP_USERS, LOADTEST_STEP_SECONDS, LOADTEST_MAX_USERS,
LOADTEST_HOLD_SECONDS, LOADTEST_SPAWN_RATE and LOADTEST_RAMP_DOWN (see loadtest_schedule).
"""

from __future__ import annotations

from loadtest_schedule import StepSchedule
from locust import LoadTestShape


class StepLoadShape(LoadTestShape):
    """Users in plateaus up to a peak, held, then back down; the test ends after the last."""

    def __init__(self) -> None:
        super().__init__()
        self.schedule = StepSchedule.from_env()

    def tick(self) -> tuple[int, float] | None:
        users = self.schedule.users_at(self.get_run_time())
        return None if users is None else (users, self.schedule.spawn_rate)
