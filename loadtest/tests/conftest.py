"""The load test's modules (loadtest/*.py) on the import path; locust itself is never imported
here: it must come first in its process (it patches the standard library), so tests run it as
a subprocess."""

from __future__ import annotations

import sys
from pathlib import Path

LOADTEST_DIR = Path(__file__).resolve().parents[1]
if str(LOADTEST_DIR) not in sys.path:
    sys.path.insert(0, str(LOADTEST_DIR))
