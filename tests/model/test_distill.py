"""Distillation: the student is cut from the teacher, learns from it, and ships only when asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_toy_root, tiny_params
from textclf import io
from textclf.config.params import parse_params
from textclf.errors import ArtifactError, ConfigError
from textclf.models.distill import kept_layers
from textclf.paths import Paths
from textclf.stages import distill, evaluate, export, prepare, train

#: A student the toy corpus trains in seconds, shipped.
STUDENT = {"enabled": True, "ship": True, "epochs": 8, "batch_size": 16, "learning_rate": 1e-3}


def test_kept_layers_spread_keeps_first_and_last_and_first_keeps_the_bottom() -> None:
    assert kept_layers(6, 0.5, "spread") == [0, 2, 5]
    assert kept_layers(6, 0.5, "first") == [0, 1, 2]
    assert kept_layers(12, 0.25, "spread") == [0, 6, 11]
    assert kept_layers(2, 0.5, "spread") == [1]


def test_a_share_that_keeps_every_layer_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"layer_share = 0\.9 keeps 2 of .* 2 layers.*Fix"):
        kept_layers(2, 0.9, "spread")


def test_shipping_without_a_student_fails_validation_naming_both_keys() -> None:
    with pytest.raises(ConfigError, match=r"distill.*ship is true but distill\.enabled is false"):
        parse_params(tiny_params(distill={"ship": True}))
    assert parse_params(tiny_params(distill={"enabled": True, "ship": True})).distill.ship


def test_disabled_distill_writes_its_marker_without_loading_torch(tmp_path: Path) -> None:
    code = (
        "import json, sys; from pathlib import Path; "
        "from textclf.config.params import parse_params; "
        "from textclf.paths import Paths; from textclf.stages import distill; "
        f"params = parse_params(json.loads({json.dumps(tiny_params())!r})); "
        f"distill.run(params, Paths(Path({str(tmp_path)!r}))); print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=Path.cwd()
    )
    assert out.stdout.strip() == "False"
    paths = Paths(tmp_path)
    assert io.read_json(paths.distill_metrics) == {"enabled": False}
    assert io.read_json(paths.student_dir / distill.STUDENT_FILE) == {"enabled": False}
    assert not (paths.student_dir / "config.json").exists()


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory, tiny_backbone: Path) -> Path:
    """The toy corpus prepared, the tiny teacher trained and a one-layer student distilled."""
    root = make_toy_root(tmp_path_factory.mktemp("distilled"), tiny_backbone)
    params = parse_params(tiny_params(distill=STUDENT))
    prepare.run(params, Paths(root))
    train.run(params, Paths(root), enable_progress_bar=False)
    distill.run(params, Paths(root), enable_progress_bar=False)
    return root


def test_the_student_keeps_part_of_the_teacher_and_learns_the_toy_task(distilled: Path) -> None:
    from textclf.models.predict import load_trained

    paths = Paths(distilled)
    metrics = io.read_json(paths.distill_metrics)
    assert metrics["enabled"] and metrics["shipped"]
    assert metrics["student"]["teacher_layers"] == 2 and metrics["student"]["layers"] == 1
    assert metrics["student"]["parameters"] < metrics["student"]["teacher_parameters"]
    assert metrics["best"]["val_macro_f1"] > 0.8, metrics
    student, encoder = load_trained(paths.student_dir)
    assert student.config.num_hidden_layers == 1
    assert encoder.meta == load_trained(paths.model_dir)[1].meta  # same tokenizer and labels
    assert not list(paths.student_dir.parent.glob(".*tmp"))


def test_shipping_the_student_evaluates_and_exports_the_student(distilled: Path) -> None:
    import onnx

    from textclf.inference import GRAPH_FILES

    params = parse_params(tiny_params(distill=STUDENT))
    paths = Paths(distilled)
    evaluate.run(params, paths)
    export.run(params, paths)
    graph = onnx.load(str(paths.onnx_dir / GRAPH_FILES["fp32"]), load_external_data=False)
    shipped = sum(
        n.op_type == "Softmax" for n in graph.graph.node
    )  # one attention softmax per layer
    assert shipped == 1
    assert io.read_json(paths.metrics)["macro_f1"] > 0.8
    compared = io.read_json(paths.export_metrics)["distill"]  # the teacher, timed beside it
    from textclf.outputs.export import ExportMetrics
    from textclf.report.sections import distill_lines

    table = "\n".join(distill_lines(ExportMetrics.read(paths.export_metrics).distill))
    assert "| student (ships) | 1 |" in table and "| student / teacher |" in table
    assert compared["shipped"] == "student"
    assert (compared["student"]["layers"], compared["teacher"]["layers"]) == (1, 2)
    assert set(compared["throughput_ratio"]) == {"batch_1", "batch_8"}
    assert compared["student"]["int8_size_mb"] < compared["teacher"]["int8_size_mb"]
    assert compared["macro_f1_drop"] == pytest.approx(
        compared["teacher"]["int8_macro_f1"] - compared["student"]["int8_macro_f1"]
    )
    # negative control: the teacher's export has both layers
    teacher = parse_params(tiny_params())
    export.run(teacher, paths)
    graph = onnx.load(str(paths.onnx_dir / GRAPH_FILES["fp32"]), load_external_data=False)
    assert sum(n.op_type == "Softmax" for n in graph.graph.node) == 2
    assert "distill" not in io.read_json(paths.export_metrics)


def test_shipping_a_student_that_was_never_trained_names_the_stage(toy_root: Path) -> None:
    params = parse_params(tiny_params(distill={"enabled": True, "ship": True}))
    prepare.run(params, Paths(toy_root))
    with pytest.raises(ArtifactError, match=r"artifacts/student holds no trained model.*distill"):
        evaluate.run(params, Paths(toy_root))
