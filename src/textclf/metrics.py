"""Classification metrics from labels and probabilities (numpy and scikit-learn only)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_recall_fscore_support,
)


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence over ``bins`` equal-width bins."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def calibration_table(
    y_true: np.ndarray, probs: np.ndarray, bins: int = 15
) -> list[dict[str, Any]]:
    """Per-bin mean confidence, accuracy and count (a reliability diagram's data)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for lo, hi in itertools.pairwise(edges):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            rows.append(
                {
                    "bin_upper": round(float(hi), 4),
                    "confidence": float(confidence[in_bin].mean()),
                    "accuracy": float(correct[in_bin].mean()),
                    "count": int(in_bin.sum()),
                }
            )
    return rows


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    """Macro-F1 over the labels ``0 .. n_labels - 1`` (a label never seen scores 0)."""
    labels = list(range(n_labels))
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def classification_metrics(
    y_true: np.ndarray, probs: np.ndarray, labels: list[str], bins: int = 15
) -> dict[str, Any]:
    """Accuracy, macro/weighted F1, per-class P/R/F1/support, ECE and log-loss."""
    y_pred = probs.argmax(axis=1)
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0
    )
    clipped = np.clip(probs, 1e-12, 1.0)
    return {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": macro_f1(y_true, y_pred, len(labels)),
        "weighted_f1": float(
            f1_score(y_true, y_pred, labels=ids, average="weighted", zero_division=0)
        ),
        "ece": expected_calibration_error(y_true, probs, bins),
        "log_loss": float(
            log_loss(y_true, clipped / clipped.sum(axis=1, keepdims=True), labels=ids)
        ),
        "per_class": {
            lab: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, lab in enumerate(labels)
        },
    }


def confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Confusion matrix with rows = actual, columns = predicted."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(labels))))
    return {"labels": labels, "matrix": matrix.tolist()}


def pr_curve(
    y_true: np.ndarray, scores: np.ndarray, positive: int, max_points: int = 200
) -> list[dict[str, float]]:
    """One-vs-rest precision-recall curve for class ``positive``, thinned to ``max_points``."""
    precision, recall, thresholds = precision_recall_curve(y_true == positive, scores)
    idx = np.unique(
        np.linspace(0, len(thresholds) - 1, min(max_points, len(thresholds))).astype(int)
    )
    return [
        {
            "threshold": float(thresholds[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
        }
        for i in idx
    ]
