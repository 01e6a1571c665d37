"""usable_cpus: the affinity, capped by a cgroup v2 CPU quota."""

from __future__ import annotations

import os

import pytest
from brainscan_servicekit import usable_cpus


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", None),  # no quota: the affinity decides
        ("100000 100000\n", 1),  # 1 CPU
        ("150000 100000\n", 2),  # 1.5 CPUs round up
        ("50000 100000\n", 1),  # never below one CPU
        ("garbage\n", None),  # unreadable: the affinity decides
    ],
)
def test_usable_cpus_follow_the_cgroup_quota_within_the_affinity(tmp_path, cpu_max, expected):
    affinity = len(os.sched_getaffinity(0))
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert usable_cpus(path) == min(affinity, expected or affinity)
    assert usable_cpus(tmp_path / "absent") == affinity
