"""Drift watch: the latest predictions of each model version against its training reference.

Each served version keeps a rolling window of its last ``window_size`` answers: predicted
class, confidence, the mean intensity of the model input and the guard's verdict. Each is
compared with the reference the model package carries (its answers on the validation split)
by the population stability index, PSI = sum((w - r) * ln(w / r)) over bins, the statistic
credit-risk and ML monitoring use for exactly this; < 0.1 is stable, 0.1-0.25 a moderate
shift, > 0.25 a major one. ``GET /api/v1/monitoring`` shows the comparison, and the Prometheus
gauges (computed when scraped) feed the alert rules.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

import numpy as np
from brainscan_manifest import Manifest
from brainscan_manifest.ood import DriftReference, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .distribution_check import DistributionCheck

STATISTICS = ("class_mix", "confidence", "intensity")
MODERATE_SHIFT = 0.1
MAJOR_SHIFT = 0.25
MIN_PREDICTIONS = 50
"""Below this many answers in a window the shares are too noisy to call a shift."""
_SMOOTHING = 0.5
"""Counts added to every bin (both sides) so an empty bin never makes PSI infinite."""


def psi(window_counts: np.ndarray, reference_shares: np.ndarray) -> float:
    """Population stability index of window counts against reference shares (same bins)."""
    bins = len(reference_shares)
    total = window_counts.sum()
    window = (window_counts + _SMOOTHING) / (total + _SMOOTHING * bins)
    # The reference has thousands of images behind it; smoothing it as if it had 1,000 keeps
    # a bin no validation image fell in from dominating the sum.
    reference = (np.asarray(reference_shares) * 1000 + _SMOOTHING) / (1000 + _SMOOTHING * bins)
    return float(np.sum((window - reference) * np.log(window / reference)))


def shift_status(value: float) -> str:
    if value > MAJOR_SHIFT:
        return "major_shift"
    return "moderate_shift" if value > MODERATE_SHIFT else "stable"


@dataclass
class _Answer:
    class_index: int
    confidence_bin: int
    intensity_bin: int
    in_distribution: bool | None


@dataclass
class VersionWindow:
    """The rolling window of one model version."""

    name: str
    version: str
    classes: list[str]
    reference: DriftReference | None
    expected_ood_rate: float | None
    size: int
    answers: deque[_Answer] = field(default_factory=deque)
    ood_checked: int = 0
    ood_flagged: int = 0

    def __post_init__(self) -> None:
        ref = self.reference
        # Running counts per bin: reporting costs O(bins), whatever the window's size.
        self.counts = {
            "class_mix": np.zeros(len(self.classes), np.int64),
            "confidence": np.zeros(len(ref.confidence.shares) if ref else 1, np.int64),
            "intensity": np.zeros(len(ref.intensity.shares) if ref else 1, np.int64),
        }

    def add(self, class_index: int, confidence: float, intensity: float, check: DistributionCheck):
        ref = self.reference
        answer = _Answer(
            class_index,
            _bin(ref.confidence, confidence) if ref else 0,
            _bin(ref.intensity, intensity) if ref else 0,
            check.in_distribution,
        )
        self.answers.append(answer)
        self._count(answer, +1)
        if len(self.answers) > self.size:
            self._count(self.answers.popleft(), -1)

    def _count(self, answer: _Answer, sign: int) -> None:
        for name, index in (
            ("class_mix", answer.class_index),
            ("confidence", answer.confidence_bin),
            ("intensity", answer.intensity_bin),
        ):
            self.counts[name][index] += sign
        if answer.in_distribution is not None:
            self.ood_checked += sign
            self.ood_flagged += sign * (not answer.in_distribution)

    def drift(self) -> dict[str, float]:
        """PSI per statistic (empty without a reference)."""
        ref = self.reference
        if ref is None or not self.answers:
            return {}
        mix = np.array([ref.class_mix[name] for name in self.classes])
        return {
            "class_mix": psi(self.counts["class_mix"], mix),
            "confidence": psi(self.counts["confidence"], np.array(ref.confidence.shares)),
            "intensity": psi(self.counts["intensity"], np.array(ref.intensity.shares)),
        }

    @property
    def ood_rate(self) -> float | None:
        return self.ood_flagged / self.ood_checked if self.ood_checked else None

    def report(self) -> dict:
        drift = self.drift()
        predictions = len(self.answers)
        if self.reference is None:
            status = "unavailable"
        elif predictions < MIN_PREDICTIONS:
            status = "too_few_predictions"
        else:
            status = shift_status(max(drift.values()))
        window_mix = self.counts["class_mix"] / max(predictions, 1)
        return {
            "name": self.name,
            "version": self.version,
            "predictions": predictions,
            "status": status,
            "reference": (
                {"images": self.reference.images, "split": self.reference.split}
                if self.reference
                else None
            ),
            "psi": drift,
            "class_mix": {
                "window": dict(zip(self.classes, map(float, window_mix), strict=True)),
                "reference": dict(self.reference.class_mix) if self.reference else None,
            },
            "out_of_distribution": {
                "rate": self.ood_rate,
                "expected_rate": self.expected_ood_rate,
                "flagged": self.ood_flagged,
                "checked": self.ood_checked,
            },
        }


def _bin(histogram: Histogram, value: float) -> int:
    return int(histogram.bins(np.array([value]))[0])


class DriftMonitor(Collector):
    """Windows of the latest versions served (the oldest is forgotten beyond ``max_versions``)."""

    def __init__(self, window_size: int, max_versions: int = 4) -> None:
        self.window_size = window_size
        self.max_versions = max_versions
        self._windows: OrderedDict[tuple[str, str], VersionWindow] = OrderedDict()

    def observe(
        self,
        manifest: Manifest,
        version: str,
        class_index: int,
        confidence: float,
        intensity: float,
        check: DistributionCheck,
    ) -> None:
        key = (manifest.name, version)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = VersionWindow(
                name=manifest.name,
                version=version,
                classes=list(manifest.classes),
                reference=manifest.ood.reference if manifest.ood else None,
                expected_ood_rate=manifest.ood.false_alarm_rate if manifest.ood else None,
                size=self.window_size,
            )
            while len(self._windows) > self.max_versions:
                self._windows.popitem(last=False)
        self._windows.move_to_end(key)
        window.add(class_index, confidence, intensity, check)

    def report(self) -> dict:
        return {
            "window_size": self.window_size,
            "statistic": "psi",
            "thresholds": {"moderate_shift": MODERATE_SHIFT, "major_shift": MAJOR_SHIFT},
            "min_predictions": MIN_PREDICTIONS,
            "models": [window.report() for window in reversed(self._windows.values())],
        }

    def collect(self):
        """Prometheus gauges, computed at scrape time from the windows."""
        labels = ["model_version"]
        drift = GaugeMetricFamily(
            "gateway_drift_psi",
            "Population stability index of the latest predictions against the training "
            "reference, by statistic (class_mix, confidence, intensity).",
            labels=[*labels, "statistic"],
        )
        rate = GaugeMetricFamily(
            "gateway_drift_out_of_distribution_rate",
            "Share of the latest predictions the guard flagged as out of distribution.",
            labels=labels,
        )
        expected = GaugeMetricFamily(
            "gateway_drift_expected_out_of_distribution_rate",
            "The false-alarm rate the guard was calibrated to on in-distribution images.",
            labels=labels,
        )
        size = GaugeMetricFamily(
            "gateway_drift_window_predictions",
            "Predictions in the drift window of a model version.",
            labels=labels,
        )
        for window in self._windows.values():
            size.add_metric([window.version], len(window.answers))
            for statistic, value in window.drift().items():
                drift.add_metric([window.version, statistic], value)
            if window.ood_rate is not None:
                rate.add_metric([window.version], window.ood_rate)
            if window.expected_ood_rate is not None:
                expected.add_metric([window.version], window.expected_ood_rate)
        yield from (drift, rate, expected, size)

    def describe(self):
        return []  # computed at scrape time; nothing to check at registration
