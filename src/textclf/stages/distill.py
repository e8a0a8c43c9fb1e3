"""distill: a smaller student trained on the teacher's soft labels and the gold labels.

DVC has no optional stages: with ``distill.enabled: false`` (the default) this stage only
writes ``artifacts/student/student.json`` and ``reports/distill/metrics.json`` saying so, without
loading torch, and stays cached. Enabled, the student starts as a copy of the fine-tuned teacher
(``artifacts/model``) keeping ``distill.layer_share`` of its encoder layers, trains with the
``train`` section's trainer settings and is saved like the teacher; ``distill.ship`` makes
evaluate and export (so the review, the gate and serving) use it instead of the teacher.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol

from textclf import io
from textclf.config.distill import DistillParams
from textclf.config.train import TrainParams
from textclf.data.prepared import read_labels, read_split
from textclf.errors import ArtifactError
from textclf.outputs.distill import DistillMetrics
from textclf.paths import Paths

STUDENT_FILE = "student.json"
TOKENIZER_PREFIXES = ("tokenizer", "special_tokens", "vocab", "merges")


class Inputs(Protocol):
    """The params sections this stage reads: `dvc.yaml` lists the same (a test checks)."""

    @property
    def distill(self) -> DistillParams: ...

    @property
    def train(self) -> TrainParams: ...


def run(params: Inputs, paths: Paths, enable_progress_bar: bool | None = None) -> dict[str, Any]:
    """Write the student (or the marker that there is none) and the metrics; return them."""
    cfg = params.distill
    if not cfg.enabled:
        with io.atomic_dir(paths.student_dir) as out:
            io.write_json(out / STUDENT_FILE, {"enabled": False})
        metrics: dict[str, Any] = {"enabled": False}
        DistillMetrics.model_validate(metrics).write(paths.distill_metrics)
        return metrics
    return _distill(cfg, params.train, paths, enable_progress_bar)


def _distill(
    cfg: DistillParams, trainer_cfg: TrainParams, paths: Paths, enable_progress_bar: bool | None
) -> dict[str, Any]:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import lightning as L
    import torch

    from textclf.models.datamodule import TextDataModule
    from textclf.models.distill import DistillModule, make_student, parameter_count
    from textclf.models.fit import fit_best, is_writer
    from textclf.models.predict import load_trained

    if not paths.model_dir.is_dir():
        raise ArtifactError(f"{paths.model_dir} is missing. Fix: run `dvc repro train`.")
    if trainer_cfg.num_threads:
        torch.set_num_threads(trainer_cfg.num_threads)
    labels = read_labels(paths)
    teacher, encoder = load_trained(paths.model_dir)
    if encoder.meta.labels != labels:
        raise ArtifactError(
            f"the teacher in {paths.model_dir} was trained for labels {encoder.meta.labels}, "
            f"but prepare wrote {labels}. Fix: dvc repro."
        )
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    student, keep = make_student(teacher, cfg.layer_share, cfg.layer_choice)
    train_df, val_df = read_split(paths, "train"), read_split(paths, "val")
    datamodule = TextDataModule(
        encoder,
        train_df,
        val_df,
        labels,
        cfg.batch_size,
        trainer_cfg.eval_batch_size,
        trainer_cfg.bucket_batches,
        cfg.seed,
    )
    module = DistillModule(
        student,
        teacher,
        len(labels),
        cfg.learning_rate,
        trainer_cfg.weight_decay,
        trainer_cfg.warmup_ratio,
        cfg.temperature,
        cfg.alpha,
    )
    with tempfile.TemporaryDirectory(prefix="textclf-distill-") as live_dir:
        summary, _ = fit_best(
            module,
            datamodule,
            trainer_cfg,
            Path(live_dir),
            epochs=cfg.epochs,
            max_steps=cfg.max_steps,
            train_rows=len(train_df),
            enable_progress_bar=enable_progress_bar,
        )
    figures = {
        "teacher_layers": len(teacher.base_model.encoder.layer),
        "layers": len(keep),
        "kept_layers": keep,
        "parameters": parameter_count(module.model),
        "teacher_parameters": parameter_count(teacher),
        "temperature": cfg.temperature,
        "alpha": cfg.alpha,
    }
    metrics = {
        "enabled": True,
        "shipped": cfg.ship,
        "best": {
            "val_macro_f1": summary["best_val_macro_f1"],
            "checkpoint": summary["best_checkpoint"],
        },
        "run": {
            k: v for k, v in summary.items() if not k.startswith("best") and k != "is_global_zero"
        },
        "student": figures,
    }
    if summary["is_global_zero"] and is_writer():
        report = DistillMetrics.model_validate(metrics)  # a malformed report fails before writing
        with io.atomic_dir(paths.student_dir) as out:
            module.model.save_pretrained(out)
            encoder.meta.save(out)
            for tokenizer_file in paths.model_dir.glob("*"):  # the teacher's tokenizer, as is
                if tokenizer_file.name.startswith(TOKENIZER_PREFIXES):
                    shutil.copy2(tokenizer_file, out / tokenizer_file.name)
            io.write_json(out / STUDENT_FILE, {"enabled": True} | figures)
        report.write(paths.distill_metrics)
    return metrics
