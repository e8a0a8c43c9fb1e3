"""The model card: generated from the run's files, carrying their numbers, never stale."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.exported import TinyExport
from textclf import io
from textclf.errors import ArtifactError
from textclf.paths import Paths
from textclf.stages import card


def test_card_carries_the_numbers_of_the_files_it_was_built_from(
    exported: TinyExport, stage_outputs: dict[str, Any]
) -> None:
    paths = exported.paths
    result = card.run(exported.params, paths)
    text = paths.model_card.read_text(encoding="utf-8")
    assert result["path"] == str(paths.model_card) and result["lines"] == text.count("\n")

    metrics = io.read_json(paths.metrics)
    assert (
        f"| macro_f1 | {metrics['macro_f1']:.4f} | {metrics['baseline']['macro_f1']:.4f} |" in text
    )
    for label, scores in metrics["per_class"].items():
        assert f"| {label} | {scores['precision']:.4f} | {scores['recall']:.4f} |" in text

    prep = io.read_json(paths.data_summary)
    assert f"md5 `{prep['source_md5']}`" in text and f"{prep['rows_raw']} raw rows" in text

    live = io.read_json(paths.train_reports / "metrics.json")
    assert f"Best validation macro-F1 {live['best']['val_macro_f1']:.4f}" in text

    export = io.read_json(paths.export_metrics)
    assert f"{export['fp32']['max_abs_logit_diff']:.6f}" in text
    assert f"Parity gates passed: {export['gates']['passed']}." in text

    shap = stage_outputs["explain"]["classes"]
    for label, ranking in shap.items():
        top = ranking["top_positive"][0]
        assert f"`{top['token']}` ({top['mean_shap']:+.3f})" in text, label

    drift = stage_outputs["drift"]
    verdict = "drift detected" if drift["drift_detected"] else "no drift"
    assert f"{verdict}" in text and f"{drift['n_drifted']} of {drift['n_columns']} columns" in text

    slices = stage_outputs["slices"]
    assert "## Slices and disparity" in text
    for name in slices["unscored"]:
        assert f"| {name} |" in text
    assert "Do not edit" in text


def test_card_marks_missing_optional_reports_and_names_the_stage(
    exported: TinyExport, tmp_path: Path
) -> None:
    paths = Paths(tmp_path)
    for src in (exported.paths.metrics, exported.paths.data_summary):
        target = tmp_path / src.relative_to(exported.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, target)
    text = card.render_card(exported.params, paths)
    for stage in ("explain", "slices", "export", "drift"):
        assert f"`dvc repro {stage}`" in text


def test_card_without_metrics_is_an_error_naming_the_fix(
    exported: TinyExport, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactError, match="dvc repro evaluate"):
        card.run(exported.params, Paths(tmp_path))
    assert not Paths(tmp_path).model_card.exists()
