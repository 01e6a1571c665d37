"""Test-split metrics: accuracy, per-class precision/recall/F1, macro F1, confusion matrix,
ROC AUC per class and calibration (expected calibration error), plus DVC plots and figures."""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Evaluation:
    classes: list[str]
    labels: np.ndarray
    probabilities: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    def metrics(self) -> dict[str, float]:
        """Flat scalar metrics (DVC metrics file, MLflow metrics, manifest)."""
        n = len(self.classes)
        precision, recall, f1, support = precision_recall_fscore_support(
            self.labels, self.predictions, labels=range(n), zero_division=0
        )
        metrics = {
            "accuracy": float(accuracy_score(self.labels, self.predictions)),
            "macro_f1": float(
                f1_score(
                    self.labels, self.predictions, labels=range(n), average="macro", zero_division=0
                )
            ),
            "ece": expected_calibration_error(self.labels, self.probabilities),
            "test_images": float(len(self.labels)),
        }
        aucs = self.roc_auc()
        metrics["macro_roc_auc"] = float(np.nanmean(list(aucs.values())))
        for i, name in enumerate(self.classes):
            metrics[f"{name}.precision"] = float(precision[i])
            metrics[f"{name}.recall"] = float(recall[i])
            metrics[f"{name}.f1"] = float(f1[i])
            metrics[f"{name}.support"] = float(support[i])
            metrics[f"{name}.roc_auc"] = aucs[name]
        return metrics

    def roc_auc(self) -> dict[str, float]:
        aucs = {}
        for i, name in enumerate(self.classes):
            positives = self.labels == i
            if positives.all() or not positives.any():
                aucs[name] = float("nan")  # undefined with one class present
            else:
                aucs[name] = float(roc_auc_score(positives, self.probabilities[:, i]))
        return aucs

    def confusion(self) -> np.ndarray:
        return confusion_matrix(self.labels, self.predictions, labels=range(len(self.classes)))


def macro_f1(labels: np.ndarray, probabilities: np.ndarray, num_classes: int) -> float:
    return float(
        f1_score(
            labels,
            probabilities.argmax(1),
            labels=range(num_classes),
            average="macro",
            zero_division=0,
        )
    )


def expected_calibration_error(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def write_reports(evaluation: Evaluation, reports_dir: Path) -> dict[str, float]:
    """metrics.json + DVC plot data (CSV) + figures (PNG); returns the metrics."""
    plots = reports_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    metrics = evaluation.metrics()
    (reports_dir / "metrics.json").write_text(
        json.dumps({k: (None if np.isnan(v) else v) for k, v in metrics.items()}, indent=2) + "\n"
    )
    classes = evaluation.classes
    with open(plots / "confusion.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["actual", "predicted"])
        for actual, predicted in zip(evaluation.labels, evaluation.predictions, strict=True):
            writer.writerow([classes[actual], classes[predicted]])
    with open(plots / "roc.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "fpr", "tpr"])
        for i, name in enumerate(classes):
            positives = evaluation.labels == i
            if positives.any() and not positives.all():
                fpr, tpr, _ = roc_curve(positives, evaluation.probabilities[:, i])
                writer.writerows([name, f, t] for f, t in zip(fpr, tpr, strict=True))
    with open(plots / "calibration.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["confidence", "accuracy", "count"])
        writer.writerows(calibration_table(evaluation))
    _figures(evaluation, plots)
    return metrics


def calibration_table(evaluation: Evaluation) -> list[tuple[float, float, int]]:
    confidence = evaluation.probabilities.max(axis=1)
    correct = evaluation.predictions == evaluation.labels
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    rows = []
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            rows.append(
                (float(confidence[in_bin].mean()), float(correct[in_bin].mean()), int(in_bin.sum()))
            )
    return rows


def _figures(evaluation: Evaluation, plots: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = evaluation.classes
    matrix = evaluation.confusion()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=colour)
    ax.set_title("Confusion matrix (test split)")
    fig.tight_layout()
    fig.savefig(plots / "confusion_matrix.png", dpi=110)
    plt.close(fig)

    auc_by_class = evaluation.roc_auc()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for i, name in enumerate(classes):
        positives = evaluation.labels == i
        if positives.any() and not positives.all():
            fpr, tpr, _ = roc_curve(positives, evaluation.probabilities[:, i])
            ax.plot(
                fpr,
                tpr,
                label=f"{name} (AUC {auc_by_class[name]:.3f})",
            )
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    ax.set_title("ROC, one class vs rest")
    fig.tight_layout()
    fig.savefig(plots / "roc.png", dpi=110)
    plt.close(fig)

    rows = calibration_table(evaluation)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="perfect")
    if rows:
        conf, acc, _ = zip(*rows, strict=True)
        ax.plot(conf, acc, "o-", label="model")
    ax.set_xlabel("mean confidence")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left")
    ax.set_title("Reliability diagram")
    fig.tight_layout()
    fig.savefig(plots / "calibration.png", dpi=110)
    plt.close(fig)


def predict_onnx(
    onnx_path: Path, output_name: str, input_name: str, images: np.ndarray
) -> np.ndarray:
    """Probabilities from an ONNX model, in batches (scores a champion on today's test split)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outputs = [
        session.run([output_name], {input_name: images[start : start + 64]})[0]
        for start in range(0, len(images), 64)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)
