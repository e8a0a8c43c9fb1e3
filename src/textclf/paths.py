"""Every path the pipeline reads or writes, in one place, relative to the repository root."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PARAMS_FILE = "params.yaml"


def safe_name(label: str) -> str:
    """A label as a file name: characters other than letters, digits, ``.-_`` become ``_``."""
    return re.sub(r"[^\w.-]", "_", label) or "_"


@dataclass(frozen=True)
class Paths:
    """Paths of one checkout. Stages receive a ``Paths`` so tests can run them in a temp dir."""

    root: Path = Path()

    # Raw data, tracked by data.dvc.
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def params(self) -> Path:
        return self.root / PARAMS_FILE

    # prepare
    @property
    def prepared_dir(self) -> Path:
        return self.root / "artifacts" / "prepared"

    def split(self, name: str) -> Path:
        """A split file: ``train``, ``val``, ``test`` or ``reference``."""
        return self.prepared_dir / f"{name}.parquet"

    @property
    def labels_file(self) -> Path:
        return self.prepared_dir / "labels.json"

    @property
    def data_summary(self) -> Path:
        return self.root / "reports" / "prepare" / "summary.json"

    # train
    @property
    def model_dir(self) -> Path:
        return self.root / "artifacts" / "model"

    @property
    def train_reports(self) -> Path:
        """DVCLive directory: training curves and the best validation scores."""
        return self.root / "reports" / "train"

    # evaluate
    @property
    def eval_dir(self) -> Path:
        return self.root / "reports" / "evaluate"

    @property
    def metrics(self) -> Path:
        return self.eval_dir / "metrics.json"

    @property
    def predictions(self) -> Path:
        """Test-split predictions (one row per example) used by slices, SHAP and drift."""
        return self.root / "artifacts" / "predictions" / "test.parquet"

    @property
    def confusion_plot(self) -> Path:
        return self.eval_dir / "plots" / "confusion.csv"

    @property
    def pr_curves_dir(self) -> Path:
        return self.eval_dir / "plots" / "pr"

    @property
    def calibration_plot(self) -> Path:
        return self.eval_dir / "plots" / "calibration.csv"
