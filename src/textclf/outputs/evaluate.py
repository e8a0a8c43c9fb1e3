"""``reports/evaluate/metrics.json``: the model's and the TF-IDF baseline's test-split scores."""

from __future__ import annotations

from typing import ClassVar

from textclf.outputs.base import Report


class ClassScores(Report):
    """One class's precision, recall, F1 and support on the test split."""

    precision: float
    recall: float
    f1: float
    support: int


class Scores(Report):
    """Classification scores of one model on the test split."""

    accuracy: float
    macro_f1: float
    weighted_f1: float
    ece: float  # expected calibration error
    log_loss: float
    n: int
    per_class: dict[str, ClassScores]


class BaselineScores(Scores):
    """The TF-IDF + logistic-regression baseline, trained on the same rows."""

    model: str = "tfidf-logreg"


class EvaluateMetrics(Scores):
    """The fine-tuned model's scores, the baseline's, and the margin between them."""

    STAGE: ClassVar[str] = "evaluate"

    baseline: BaselineScores
    macro_f1_over_baseline: float


class ConfusionMatrix(Report):
    """``reports/evaluate/confusion_matrix.json``: rows = true class, columns = predicted."""

    STAGE: ClassVar[str] = "evaluate"

    labels: list[str]
    matrix: list[list[int]]
