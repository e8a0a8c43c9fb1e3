"""The distilled student's speed against its teacher: int8 ONNX on CPU, both timed in one run.

Speed depends on the architecture, not on the weights, so the student here is the teacher cut to
``distill.layer_share`` of its layers (:func:`textclf.models.distill.make_student`) without the
distillation training; both are exported and quantised as the export stage does. The student's
macro-F1 needs the training: it is read from ``reports/export/metrics.json`` when the workspace
ran with ``distill.enabled`` (docs/distill.md), else reported as not measured.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from textclf import io
from textclf.errors import ArtifactError
from textclf.latency import format_ratio, padded_batches, ratio


def _logits(clf: Any, batch: list[str]) -> Any:
    return clf.logits(batch, len(batch))


def run(
    torch_dir: Path,
    export_metrics: Path,
    layer_share: float,
    layer_choice: str,
    quick: bool = False,
) -> dict[str, Any]:
    """texts/s of the teacher's and the cut student's int8 graphs per batch size, and ratios."""
    import shutil

    from textclf.config.export import ExportParams
    from textclf.data.text import META_FILE, TOKENIZER_FILE
    from textclf.inference import GRAPH_FILES, OnnxClassifier
    from textclf.models.distill import make_student
    from textclf.models.predict import load_trained
    from textclf.quantize import quantize_int8
    from textclf.stages.export import export_onnx, size_mb
    from textclf_dev.bench.inference import _compare, default_texts

    torch_dir = Path(torch_dir)
    if not (torch_dir / "config.json").is_file():
        raise ArtifactError(f"no trained model in {torch_dir}. Fix: run `dvc repro train`.")
    teacher, encoder = load_trained(torch_dir)
    student, kept = make_student(teacher, layer_share, layer_choice)
    texts = default_texts(torch_dir.parent / "onnx", 48 if quick else 512)
    runs, warmup = (1, 2) if quick else (3, 5)
    cfg = ExportParams()
    calibration, _ = padded_batches(encoder, texts[:128], cfg.batch_size)
    with tempfile.TemporaryDirectory(prefix="textclf-bench-distill-") as scratch:
        engines: dict[str, Callable[[list[str]], Any]] = {}
        sides: dict[str, Any] = {}
        for name, model in (("teacher", teacher), ("student", student)):
            out = Path(scratch) / name
            out.mkdir()
            fp32 = export_onnx(model, encoder, out / GRAPH_FILES["fp32"], cfg.opset)
            int8 = quantize_int8(fp32, out / GRAPH_FILES["int8"], cfg, calibration)
            for file in (TOKENIZER_FILE, META_FILE):
                shutil.copy2(torch_dir / file, out / file)
            clf = OnnxClassifier(out, "int8", providers=["CPUExecutionProvider"])
            engines[f"{name}_int8"] = partial(_logits, clf)
            sides[name] = {
                "layers": int(model.config.num_hidden_layers),
                "int8_size_mb": size_mb([int8, int8.with_name(int8.name + ".data")]),
            }
        batch = _compare(engines, "teacher_int8", texts, encoder, runs, warmup)
    trained = None
    if Path(export_metrics).is_file():
        trained = io.read_json(Path(export_metrics)).get("distill")
    return {
        "texts": len(texts),
        "runs": runs,
        "kept_layers": kept,
        "teacher": sides["teacher"],
        "student": sides["student"],
        "size_ratio": ratio(sides["student"]["int8_size_mb"], sides["teacher"]["int8_size_mb"]),
        "batch": batch,
        "trained": trained,  # the export stage's comparison of the trained student, if any
    }


def markdown(result: dict[str, Any]) -> str:
    """The student vs teacher table."""
    teacher, student = result["teacher"], result["student"]
    lines = [
        "### Distilled student vs teacher (int8, CPU)",
        "",
        f"Student: layers {result['kept_layers']} of the teacher's {teacher['layers']}; int8 "
        f"{student['int8_size_mb']} MB vs {teacher['int8_size_mb']} MB "
        f"({format_ratio(result['size_ratio'])}). {result['texts']} test texts, "
        f"{result['runs']} passes, the two graphs taking turns.",
        "",
        "| batch | teacher texts/s | student texts/s | student / teacher | student p95 ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    for bs, engines in sorted(result["batch"].items(), key=lambda kv: int(kv[0])):
        t, s = engines["teacher_int8"], engines["student_int8"]
        lines.append(
            f"| {bs} | {t['texts_per_s']:.1f} | {s['texts_per_s']:.1f} | "
            f"{format_ratio(s['throughput_vs_reference'])} | {s['p95_ms']:.1f} |"
        )
    trained = result.get("trained")
    lines.append("")
    if trained:
        lines.append(
            f"Trained student (export stage, this workspace): int8 test macro-F1 "
            f"{trained['student']['int8_macro_f1']:.4f} vs the teacher's "
            f"{trained['teacher']['int8_macro_f1']:.4f} (drop {trained['macro_f1_drop']:.4f})."
        )
    else:
        lines.append(
            "The student's macro-F1 is not measured in this workspace (distill.enabled is "
            "false): run docs/distill.md's `dvc exp run` to train it."
        )
    return "\n".join(lines)
