"""Every path the pipeline's stages read or write, in one place, relative to the repository root.

Every stage imports this module (``dvc.yaml`` lists it in their deps), so it holds only the
pipeline's paths: the settings files, benchmarks and review outputs are in
:mod:`textclf.repo_paths`, and adding one there reruns no stage.
"""

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

    # distill
    @property
    def student_dir(self) -> Path:
        """The distilled student (like model_dir), or only student.json when distill is off."""
        return self.root / "artifacts" / "student"

    @property
    def distill_metrics(self) -> Path:
        return self.root / "reports" / "distill" / "metrics.json"

    def shipped_model_dir(self, ship_student: bool) -> Path:
        """The torch model evaluate and export read: the student when ``distill.ship``."""
        return self.student_dir if ship_student else self.model_dir

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

    # export
    @property
    def onnx_dir(self) -> Path:
        """ONNX graphs (fp32 + int8), tokenizer and textclf.json: what serving loads."""
        return self.root / "artifacts" / "onnx"

    @property
    def export_metrics(self) -> Path:
        """Parity (torch vs ONNX), sizes and CPU latency of the exported graphs."""
        return self.root / "reports" / "export" / "metrics.json"

    # explain
    @property
    def explain_summary(self) -> Path:
        """Top SHAP tokens per class and the explained examples (JSON)."""
        return self.root / "reports" / "explain" / "summary.json"

    @property
    def explain_markdown(self) -> Path:
        return self.root / "reports" / "explain" / "summary.md"

    @property
    def explain_html(self) -> Path:
        """SHAP's interactive text plots (cached by DVC, not committed)."""
        return self.root / "artifacts" / "explain" / "shap.html"

    # slices
    @property
    def slices_metrics(self) -> Path:
        return self.root / "reports" / "slices" / "metrics.json"

    @property
    def slices_markdown(self) -> Path:
        return self.root / "reports" / "slices" / "summary.md"

    # behaviour
    @property
    def behaviour_suite(self) -> Path:
        """The behaviour tests (in git, CODEOWNERS-guarded; the review reads the base's)."""
        return self.root / "behaviour.yaml"

    @property
    def behaviour_metrics(self) -> Path:
        return self.root / "reports" / "behaviour" / "metrics.json"

    @property
    def behaviour_markdown(self) -> Path:
        return self.root / "reports" / "behaviour" / "summary.md"

    # drift
    @property
    def drift_summary(self) -> Path:
        return self.root / "reports" / "drift" / "summary.json"

    @property
    def drift_html(self) -> Path:
        """Evidently's HTML report (cached by DVC, not committed)."""
        return self.root / "artifacts" / "drift" / "report.html"

    @property
    def drift_reference_profile(self) -> Path:
        """Reference texts with the model's predictions: what ``drift-check`` compares against."""
        return self.root / "artifacts" / "drift" / "reference_profile.parquet"

    # card
    @property
    def model_card(self) -> Path:
        return self.root / "reports" / "model_card.md"

    @property
    def data_dvc(self) -> Path:
        """The DVC pointer of the raw data (its md5 names the data version)."""
        return self.root / "data.dvc"

    @property
    def train_curves_dir(self) -> Path:
        """DVCLive step-wise curves: ``train/loss.tsv``, ``val/macro_f1.tsv``, ..."""
        return self.train_reports / "plots" / "metrics"
