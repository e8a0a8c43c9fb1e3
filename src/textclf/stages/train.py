"""train: fine-tune the backbone with Lightning; keep the best checkpoint by validation macro-F1."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from textclf import io
from textclf.config.model import ModelParams
from textclf.config.train import TrainParams
from textclf.data.prepared import read_labels, read_split
from textclf.data.text import ModelMeta, Normalizer, TextEncoder
from textclf.outputs.train import TrainMetrics
from textclf.paths import Paths


class Inputs(Protocol):
    """The params sections this stage reads: `dvc.yaml` lists the same (a test checks)."""

    @property
    def model(self) -> ModelParams: ...

    @property
    def train(self) -> TrainParams: ...


def run(params: Inputs, paths: Paths, enable_progress_bar: bool | None = None) -> dict[str, Any]:
    """Train, then save the best model, tokenizer and ``textclf.json`` to the model directory."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import lightning as L
    import torch

    from textclf.models.backbone import load_classifier, load_tokenizer, resolve_backbone
    from textclf.models.datamodule import TextDataModule
    from textclf.models.fit import fit_best, is_writer, write_live_summary
    from textclf.models.module import FineTuneModule

    cfg, model_cfg = params.train, params.model
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    labels = read_labels(paths)
    train_df, val_df = read_split(paths, "train"), read_split(paths, "val")
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    source = resolve_backbone(model_cfg.backbone, paths.root)
    tokenizer = load_tokenizer(source)
    meta = ModelMeta(
        labels=labels,
        max_length=model_cfg.max_length,
        pad_token_id=int(tokenizer.pad_token_id),
        normalizer=Normalizer(**model_cfg.preprocess.model_dump()),
        backbone=model_cfg.backbone,
    )
    encoder = TextEncoder(tokenizer.backend_tokenizer, meta)
    datamodule = TextDataModule(
        encoder,
        train_df,
        val_df,
        labels,
        cfg.batch_size,
        cfg.eval_batch_size,
        cfg.bucket_batches,
        cfg.seed,
    )
    module = FineTuneModule(
        load_classifier(source, labels, model_cfg.dropout),
        len(labels),
        cfg.learning_rate,
        cfg.weight_decay,
        cfg.warmup_ratio,
    )

    writer = is_writer()
    reports = io.atomic_dir(paths.train_reports) if writer else tempfile.TemporaryDirectory()
    with reports as live_dir:
        summary, logger = fit_best(
            module,
            datamodule,
            cfg,
            Path(live_dir),
            epochs=cfg.epochs,
            max_steps=cfg.max_steps,
            train_rows=len(train_df),
            enable_progress_bar=enable_progress_bar,
        )
        if summary.pop("is_global_zero") and writer:
            write_live_summary(logger, summary, TrainMetrics)
            with io.atomic_dir(paths.model_dir) as out:
                module.model.save_pretrained(out)
                tokenizer.save_pretrained(out)
                meta.save(out)
    return summary
