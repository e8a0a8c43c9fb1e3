"""slices: accuracy and macro-F1 per text slice of the test predictions, and the disparity check."""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from textclf import io
from textclf.config.slices import SlicesParams
from textclf.data.prepared import read_labels
from textclf.errors import ArtifactError
from textclf.monitoring.slices import render_markdown, slice_report
from textclf.outputs.slices import SlicesReport
from textclf.paths import Paths

COLUMNS = ("text", "label", "prediction")


class Inputs(Protocol):
    """The params sections this stage reads: `dvc.yaml` lists the same (a test checks)."""

    @property
    def slices(self) -> SlicesParams: ...


def read_predictions(paths: Paths) -> pd.DataFrame:
    """The test-split predictions written by ``evaluate``."""
    path = paths.predictions
    if not path.is_file():
        raise ArtifactError(f"{path} is missing. Fix: run `dvc repro evaluate`.")
    frame = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ArtifactError(
            f"{path} lacks column(s) {missing}. Fix: rerun `dvc repro evaluate` "
            "with this version of the code."
        )
    return frame


def run(params: Inputs, paths: Paths) -> dict[str, Any]:
    """Score every configured slice; write ``reports/slices/metrics.json`` and ``summary.md``."""
    labels = read_labels(paths)
    report = slice_report(read_predictions(paths), labels, params.slices)
    SlicesReport.model_validate(report).write(paths.slices_metrics)  # validated, then written
    io.write_text(paths.slices_markdown, render_markdown(report))
    return report
