"""The typed report models: a real report reads and writes back unchanged; a bad one is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO
from textclf.errors import ArtifactError
from textclf.outputs.behaviour import BehaviourReport
from textclf.outputs.distill import DistillMetrics
from textclf.outputs.drift import DriftSummary
from textclf.outputs.evaluate import ConfusionMatrix, EvaluateMetrics
from textclf.outputs.explain import ExplainSummary
from textclf.outputs.export import ExportMetrics
from textclf.outputs.headline import FIGURES, Run, summary_lines
from textclf.outputs.prepare import PrepareSummary
from textclf.outputs.slices import SlicesReport
from textclf.outputs.train import TrainMetrics

# Every report file a stage writes as JSON, and its model.
COMMITTED = {
    PrepareSummary: REPO / "reports" / "prepare" / "summary.json",
    EvaluateMetrics: REPO / "reports" / "evaluate" / "metrics.json",
    ConfusionMatrix: REPO / "reports" / "evaluate" / "confusion_matrix.json",
    ExportMetrics: REPO / "reports" / "export" / "metrics.json",
    ExplainSummary: REPO / "reports" / "explain" / "summary.json",
    SlicesReport: REPO / "reports" / "slices" / "metrics.json",
    BehaviourReport: REPO / "reports" / "behaviour" / "metrics.json",
    DriftSummary: REPO / "reports" / "drift" / "summary.json",
    TrainMetrics: REPO / "reports" / "train" / "metrics.json",
    DistillMetrics: REPO / "reports" / "distill" / "metrics.json",
}


def test_every_json_report_in_dvc_yaml_has_a_model() -> None:
    """A stage that starts writing a new JSON report gets a model here."""
    import yaml

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    written = {
        next(iter(out)) if isinstance(out, dict) else out
        for stage in stages.values()
        for kind in ("outs", "metrics")
        for out in stage.get(kind, [])
    }
    json_reports = {w for w in written if w.startswith("reports/") and w.endswith(".json")}
    typed = {p.relative_to(REPO).as_posix() for p in COMMITTED.values()}
    assert json_reports == typed


@pytest.mark.parametrize("model", list(COMMITTED), ids=lambda m: m.__name__)
def test_the_committed_report_round_trips_byte_for_byte(model: type, tmp_path: Path) -> None:
    source = COMMITTED[model]
    report = model.read(source)
    target = report.write(tmp_path / "metrics.json")
    if model is TrainMetrics:  # DVCLive writes that one, in its own layout: same values
        assert json.loads(target.read_text()) == json.loads(source.read_text())
    else:
        assert target.read_text(encoding="utf-8") == source.read_text(encoding="utf-8")


def test_keys_the_model_does_not_name_are_kept(tmp_path: Path) -> None:
    raw = json.loads(COMMITTED[EvaluateMetrics].read_text(encoding="utf-8"))
    raw["added_by_a_later_version"] = {"x": 1}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    again = json.loads(EvaluateMetrics.read(path).write(tmp_path / "out.json").read_text())
    assert again["added_by_a_later_version"] == {"x": 1}


def test_missing_invalid_and_incomplete_reports_name_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    with pytest.raises(
        ArtifactError, match=r"metrics.json is missing. Fix: run `dvc repro export`"
    ):
        ExportMetrics.read(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"is not valid JSON .* `dvc repro export`"):
        ExportMetrics.read(path)
    raw = json.loads(COMMITTED[ExportMetrics].read_text(encoding="utf-8"))
    raw["int8"]["agreement"] = "most"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"int8.agreement: Input should be a valid number"):
        ExportMetrics.read(path)


def test_latency_by_batch_and_threads() -> None:
    export = ExportMetrics.read(COMMITTED[ExportMetrics])
    by_batch = export.latency_by_batch()
    assert list(by_batch) == sorted(by_batch) and 1 in by_batch
    assert {"torch", "onnx_fp32", "onnx_int8"} <= set(by_batch[1])
    assert isinstance(export.threads, int) and export.threads >= 1


def _figure(label: str):  # type: ignore[no-untyped-def]
    return next(f for f in FIGURES if f.label == label)


def test_noise_floors_score_absolute_timing_relative() -> None:
    ece = _figure("expected calibration error")
    assert (ece.delta(0.04246856, 0.04246854), ece.trend(0.04246856, 0.04246854)) == ("≈0", "⚪")
    assert (ece.delta(0.0445, 0.0425), ece.trend(0.0445, 0.0425)) == ("+0.0020", "🔴")
    p95 = _figure("int8 p95 latency, batch 1 (ms)")
    assert p95.trend(3.9, 3.7) == "⚪"  # +5%: a shared machine's noise
    assert p95.trend(4.5, 3.7) == "🔴"  # +22%
    assert p95.trend(3.0, 3.7) == "🟢"
    assert ece.delta(None, 0.04) == "—" and ece.trend(0.04, None) == ""


def test_summary_lines_read_the_typed_reports() -> None:
    run = Run(
        evaluate=EvaluateMetrics.read(COMMITTED[EvaluateMetrics]),
        export=ExportMetrics.read(COMMITTED[ExportMetrics]),
    )
    first, second = summary_lines(run)
    assert first.startswith(f"test macro-F1 {run.evaluate.macro_f1:.4f} (TF-IDF + LR baseline")
    assert second.startswith("ONNX: fp32 max |logit diff|") and "batch size 1: " in second
    assert summary_lines(Run()) == []
