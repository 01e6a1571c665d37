"""Test-split metrics and the report files DVC and MLflow pick up."""

from __future__ import annotations

import json

import numpy as np
import pytest
from brainscan_training.evaluate import Evaluation, expected_calibration_error, write_reports

CLASSES = ["glioma", "meningioma", "notumor", "pituitary"]


def one_hot(labels, confidence=1.0):
    probs = np.full((len(labels), 4), (1 - confidence) / 3)
    probs[np.arange(len(labels)), labels] = confidence
    return probs


def test_perfect_predictions():
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    metrics = Evaluation(CLASSES, labels, one_hot(labels)).metrics()
    assert metrics["accuracy"] == 1.0 and metrics["macro_f1"] == 1.0
    assert metrics["macro_roc_auc"] == 1.0
    assert metrics["ece"] == pytest.approx(0.0)
    assert metrics["glioma.support"] == 2.0


def test_one_class_always_missed():
    labels = np.array([0, 1, 2, 3] * 5)
    predicted = np.where(labels == 3, 2, labels)  # pituitary called notumor
    evaluation = Evaluation(CLASSES, labels, one_hot(predicted, 0.9))
    metrics = evaluation.metrics()
    assert metrics["accuracy"] == 0.75
    assert metrics["pituitary.recall"] == 0.0
    assert metrics["notumor.precision"] == 0.5
    assert metrics["macro_f1"] == pytest.approx((1 + 1 + 2 / 3 + 0) / 4)
    assert evaluation.confusion()[3, 2] == 5


def test_ece_measures_overconfidence():
    labels = np.array([0, 1, 0, 1])
    # Always 90% confident, right half the time: calibration error 0.4.
    probabilities = one_hot(np.array([0, 0, 0, 0]), 0.9)
    assert expected_calibration_error(labels, probabilities) == pytest.approx(0.4)


def test_reports_are_written(tmp_path):
    labels = np.array([0, 1, 2, 3] * 3)
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(4), size=len(labels))
    metrics = write_reports(Evaluation(CLASSES, labels, probabilities), tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["macro_f1"] == metrics["macro_f1"]
    for name in ("confusion.csv", "roc.csv", "calibration.csv", "confusion_matrix.png", "roc.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 0
    confusion_rows = (tmp_path / "plots/confusion.csv").read_text().splitlines()
    assert confusion_rows[0] == "actual,predicted" and len(confusion_rows) == 13
