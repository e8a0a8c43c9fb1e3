"""evaluate: test metrics, calibration, plots, and the TF-IDF + logistic-regression baseline."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd

from textclf import io
from textclf.config.distill import DistillParams
from textclf.config.evaluate import BaselineParams, EvaluateParams
from textclf.data.prepared import LABEL, TEXT, read_labels, read_split
from textclf.data.text import Normalizer, softmax
from textclf.errors import ArtifactError
from textclf.metrics import calibration_table, classification_metrics, confusion, pr_curve
from textclf.outputs.evaluate import ConfusionMatrix, EvaluateMetrics
from textclf.paths import Paths, safe_name


class Inputs(Protocol):
    """The params sections this stage reads: `dvc.yaml` lists the same (a test checks)."""

    @property
    def evaluate(self) -> EvaluateParams: ...

    @property
    def distill(self) -> DistillParams: ...


def baseline_probs(
    train: pd.DataFrame,
    test: pd.DataFrame,
    labels: list[str],
    normalizer: Normalizer,
    cfg: BaselineParams,
) -> np.ndarray:
    """Fit TF-IDF + logistic regression on ``train``; class probabilities for ``test``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(
        TfidfVectorizer(
            ngram_range=(1, cfg.ngram_max),
            max_features=cfg.max_features,
            sublinear_tf=True,
            lowercase=True,
        ),
        LogisticRegression(C=cfg.C, max_iter=5000),
    )
    y = train[LABEL].map({lab: i for i, lab in enumerate(labels)}).to_numpy()
    pipe.fit([normalizer(t) for t in train[TEXT]], y)
    probs = np.zeros((len(test), len(labels)))
    probs[:, pipe.classes_] = pipe.predict_proba([normalizer(t) for t in test[TEXT]])
    return probs


def run(params: Inputs, paths: Paths) -> dict[str, Any]:
    """Score the trained model and the baseline on the test split; write metrics and plots."""
    from textclf.models.predict import load_trained, predict_logits, shipped_model_dir

    cfg = params.evaluate
    labels = read_labels(paths)
    model_dir = shipped_model_dir(paths, params.distill.ship)
    test, train = read_split(paths, "test"), read_split(paths, "train")
    model, encoder = load_trained(model_dir)
    if encoder.meta.labels != labels:
        raise ArtifactError(
            f"the model in {model_dir} was trained for labels "
            f"{encoder.meta.labels}, but prepare wrote {labels}. Fix: dvc repro."
        )
    y_true = test[LABEL].map({lab: i for i, lab in enumerate(labels)}).to_numpy()
    probs = softmax(predict_logits(model, encoder, test[TEXT].tolist(), cfg.batch_size))
    base = baseline_probs(train, test, labels, encoder.meta.normalizer, cfg.baseline)

    metrics = classification_metrics(y_true, probs, labels, cfg.calibration_bins)
    metrics["baseline"] = classification_metrics(y_true, base, labels, cfg.calibration_bins)
    metrics["baseline"]["model"] = "tfidf-logreg"
    metrics["macro_f1_over_baseline"] = metrics["macro_f1"] - metrics["baseline"]["macro_f1"]
    y_pred = probs.argmax(axis=1)

    predictions = pd.DataFrame(
        {
            "row": test["row"],
            TEXT: test[TEXT],
            LABEL: test[LABEL],
            "prediction": [labels[i] for i in y_pred],
            "confidence": probs.max(axis=1),
        }
    )
    for i, lab in enumerate(labels):
        predictions[f"prob_{lab}"] = probs[:, i]
    with io.atomic_path(paths.predictions) as tmp:
        predictions.to_parquet(tmp, index=False)

    EvaluateMetrics.model_validate(metrics).write(paths.metrics)  # validated, then written
    matrix = ConfusionMatrix.model_validate(confusion(y_true, y_pred, labels))
    matrix.write(paths.eval_dir / "confusion_matrix.json")
    confusion_rows = pd.DataFrame(
        {"actual": test[LABEL].to_numpy(), "predicted": [labels[i] for i in y_pred]}
    )
    with io.atomic_path(paths.confusion_plot) as tmp:
        confusion_rows.to_csv(tmp, index=False)
    with io.atomic_path(paths.calibration_plot) as tmp:
        pd.DataFrame(calibration_table(y_true, probs, cfg.calibration_bins)).to_csv(
            tmp, index=False
        )
    with io.atomic_dir(paths.pr_curves_dir) as out:
        for i, lab in enumerate(labels):
            pd.DataFrame(pr_curve(y_true, probs[:, i], i)).to_csv(
                out / f"{safe_name(lab)}.csv", index=False
            )
    return metrics
