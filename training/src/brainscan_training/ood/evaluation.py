"""How well the guard does: false alarms on held-out in-distribution images (the test split)
and detection of every item of the out-of-distribution corpus, per category.

The pipeline's ``guard`` stage writes the figures to ``reports/ood.json`` (DVC metrics), the
per-item table to ``reports/plots/ood_corpus.csv``, a histogram of scores to
``reports/plots/ood_scores.png``, and the same numbers to the MLflow run.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from brainscan_manifest import Manifest
from brainscan_manifest.decode import upright_eight_bit
from brainscan_manifest.guard_fit import run_graph
from brainscan_manifest.ood import PROPORTIONS_CUE, OodSpec
from brainscan_manifest.preprocess import to_input_array

from .corpus import CorpusItem


@dataclass(frozen=True)
class ItemVerdict:
    name: str
    category: str
    score: float
    flagged: bool
    cue: str


@dataclass(frozen=True)
class GuardReport:
    """The guard's verdicts on the test split and on the corpus."""

    threshold: float
    false_alarm_target: float
    test_scores: np.ndarray
    corpus: list[ItemVerdict]

    @property
    def test_false_alarm_rate(self) -> float:
        return float(np.mean(self.test_scores > self.threshold)) if len(self.test_scores) else 0.0

    def metrics(self) -> dict[str, float]:
        """Flat figures (DVC metrics, MLflow, the manifest's ood.metrics)."""
        flagged = [item.flagged for item in self.corpus]
        metrics = {
            "threshold": self.threshold,
            "false_alarm_target": self.false_alarm_target,
            "test_images": float(len(self.test_scores)),
            "test_false_alarm_rate": self.test_false_alarm_rate,
            "corpus_items": float(len(flagged)),
            "corpus_detection_rate": float(np.mean(flagged)) if flagged else 0.0,
            "corpus_missed": float(len(flagged) - sum(flagged)),
        }
        for category in sorted({item.category for item in self.corpus}):
            rows = [item.flagged for item in self.corpus if item.category == category]
            metrics[f"corpus.{category}.detection_rate"] = float(np.mean(rows))
        return metrics

    @property
    def missed(self) -> list[str]:
        return [item.name for item in self.corpus if not item.flagged]


def corpus_inputs(items: Sequence[CorpusItem], manifest: Manifest) -> np.ndarray:
    """The corpus as model inputs, decoded and resized exactly as the gateway does an upload."""
    spec = manifest.input
    return np.stack([to_input_array(upright_eight_bit(item.image), spec) for item in items])


def evaluate_guard(
    model: onnx.ModelProto,
    manifest: Manifest,
    spec: OodSpec,
    test_images: np.ndarray,
    corpus: Sequence[CorpusItem],
    test_sizes: list[tuple[int, int]] | None = None,
) -> GuardReport:
    """Verdicts of the guarded graph ``model`` (and of the proportions check, as the gateway
    applies it, where sizes are known) on the test split and the corpus."""
    outputs = [spec.score, spec.cues]
    test = run_graph(model, manifest.input.name, test_images, outputs)[spec.score]
    if test_sizes is not None and spec.aspect_ratio is not None:
        # An image with unlike proportions counts as flagged whatever its score.
        odd = np.array([not spec.aspect_ratio.fits(*size) for size in test_sizes])
        test = np.where(odd, np.inf, test)
    scored = run_graph(model, manifest.input.name, corpus_inputs(corpus, manifest), outputs)
    verdicts = []
    for item, score, cues in zip(corpus, scored[spec.score], scored[spec.cues], strict=True):
        cue = spec.cue(int(np.argmax(cues))).name
        flagged = bool(score > spec.threshold)
        if not flagged and spec.aspect_ratio and not spec.aspect_ratio.fits(*item.image.size):
            flagged, cue = True, PROPORTIONS_CUE
        verdicts.append(ItemVerdict(item.name, item.category, float(score), flagged, cue))
    return GuardReport(spec.threshold, spec.false_alarm_rate, test, verdicts)


MANIFEST_METRICS = ("test_false_alarm_rate", "test_images", "corpus_detection_rate", "corpus_items")
"""The evaluation figures a guarded package's manifest carries."""


def with_metrics(spec: OodSpec, metrics: Mapping[str, float]) -> OodSpec:
    """``spec`` carrying the evaluation's ``MANIFEST_METRICS``."""
    return spec.model_copy(update={"metrics": {key: metrics[key] for key in MANIFEST_METRICS}})


def write_reports(report: GuardReport, reports_dir: Path) -> dict[str, float]:
    """ood.json, the per-item CSV and the score histogram; returns the metrics."""
    plots = reports_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    metrics = report.metrics()
    document = {**metrics, "missed": report.missed}
    (reports_dir / "ood.json").write_text(json.dumps(document, indent=2) + "\n")
    with open(plots / "ood_corpus.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "category", "score", "flagged", "cue"])
        for item in report.corpus:
            writer.writerow([item.name, item.category, f"{item.score:.4f}", item.flagged, item.cue])
    _histogram(report, plots / "ood_scores.png")
    return metrics


def _histogram(report: GuardReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpus = np.array([item.score for item in report.corpus])
    values = np.concatenate([report.test_scores, corpus, [report.threshold]])
    edges = np.geomspace(max(values.min(), 1e-3), values.max() * 1.05, 40)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(np.clip(report.test_scores, edges[0], None), edges, alpha=0.7, label="test split")
    ax.hist(np.clip(corpus, edges[0], None), edges, alpha=0.7, label="out-of-distribution corpus")
    ax.axvline(report.threshold, color="k", linestyle="--", label="threshold")
    ax.set_xscale("log")
    ax.set_xlabel("guard score (largest cue over its calibration quantile)")
    ax.set_ylabel("images")
    ax.set_title(
        f"test false alarms {100 * report.test_false_alarm_rate:.1f} %, "
        f"corpus detected {sum(i.flagged for i in report.corpus)}/{len(report.corpus)}"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
