"""A real (tiny) fine-tuning run: it learns, it is reproducible, and it saves what serving needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_toy_root, tiny_params
from textclf import io
from textclf.config.params import parse_params
from textclf.data.text import META_FILE, TOKENIZER_FILE, ModelMeta
from textclf.errors import ArtifactError, ConfigError
from textclf.paths import Paths
from textclf.stages import evaluate, prepare, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_backbone: Path) -> Path:
    """Prepare, train and evaluate the toy corpus once for this module."""
    return _train_from_scratch(make_toy_root(tmp_path_factory.mktemp("trained"), tiny_backbone))


def _train_from_scratch(root: Path) -> Path:
    params = parse_params(tiny_params())
    prepare.run(params, Paths(root))
    train.run(params, Paths(root), enable_progress_bar=False)
    evaluate.run(params, Paths(root))
    return root


def test_tiny_model_learns_the_toy_task(trained: Path) -> None:
    metrics = io.read_json(Paths(trained).metrics)
    assert metrics["macro_f1"] > 0.9, metrics
    assert set(metrics["per_class"]) == {"negative", "neutral", "positive"}
    live = io.read_json(Paths(trained).train_reports / "metrics.json")
    assert live["best"]["val_macro_f1"] > 0.9
    assert live["run"]["train_rows"] == 224


def test_model_dir_has_weights_tokenizer_and_meta(trained: Path) -> None:
    model_dir = Paths(trained).model_dir
    for name in ("config.json", "model.safetensors", TOKENIZER_FILE, META_FILE):
        assert (model_dir / name).is_file(), name
    meta = ModelMeta.load(model_dir)
    assert meta.labels == ["negative", "neutral", "positive"]
    assert meta.max_length == 32
    assert not list(model_dir.parent.glob(".*tmp"))  # no leftovers of the atomic write


def test_evaluate_writes_metrics_baseline_and_plots(trained: Path) -> None:
    paths = Paths(trained)
    metrics = io.read_json(paths.metrics)
    assert {"accuracy", "macro_f1", "weighted_f1", "ece", "log_loss", "baseline"} <= set(metrics)
    assert 0.0 <= metrics["ece"] <= 1.0
    assert metrics["baseline"]["model"] == "tfidf-logreg"
    assert metrics["macro_f1_over_baseline"] == pytest.approx(
        metrics["macro_f1"] - metrics["baseline"]["macro_f1"]
    )
    confusion = pd.read_csv(paths.confusion_plot)
    assert len(confusion) == metrics["n"]
    matrix = io.read_json(paths.eval_dir / "confusion_matrix.json")["matrix"]
    assert np.trace(matrix) / np.sum(matrix) == pytest.approx(metrics["accuracy"])
    assert sorted(p.name for p in paths.pr_curves_dir.iterdir()) == [
        "negative.csv",
        "neutral.csv",
        "positive.csv",
    ]
    preds = pd.read_parquet(paths.predictions)
    assert {"prediction", "confidence", "prob_positive"} <= set(preds.columns)
    curves = (paths.train_reports / "plots" / "metrics" / "val" / "macro_f1.tsv").read_text()
    assert len(curves.strip().splitlines()) >= 2  # header + one point per validation


def test_same_params_same_metrics(trained: Path, tmp_path: Path, tiny_backbone: Path) -> None:
    """Reproducible on CPU: a second run from scratch gives identical metrics."""
    _train_from_scratch(make_toy_root(tmp_path, tiny_backbone))
    first, second = io.read_json(Paths(trained).metrics), io.read_json(Paths(tmp_path).metrics)
    assert first["macro_f1"] == second["macro_f1"]
    assert first["log_loss"] == pytest.approx(second["log_loss"], abs=1e-6)


def test_train_without_prepare_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="dvc repro prepare"):
        train.run(parse_params(tiny_params()), Paths(tmp_path))


def test_missing_backbone_directory_is_a_config_error(toy_root: Path) -> None:
    params = parse_params(tiny_params(model={"backbone": "./no-such-dir"}))
    prepare.run(params, Paths(toy_root))
    with pytest.raises(ConfigError, match="does not exist"):
        train.run(params, Paths(toy_root))


def test_failed_training_leaves_no_model(toy_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash mid-training leaves neither a model directory nor partial reports behind."""
    from textclf.models import module

    params = parse_params(tiny_params(train={"epochs": 1}))
    prepare.run(params, Paths(toy_root))

    def boom(self: object, batch: object, batch_idx: int) -> None:
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(module.FineTuneModule, "training_step", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train.run(params, Paths(toy_root), enable_progress_bar=False)
    assert not Paths(toy_root).model_dir.exists()
    assert not Paths(toy_root).train_reports.exists()
    assert not [p for p in (toy_root / "reports").rglob("*") if p.name.endswith(".tmp")]
