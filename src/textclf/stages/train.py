"""train: fine-tune the backbone with Lightning; keep the best checkpoint by validation macro-F1."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from textclf import io
from textclf.config.model import ModelParams
from textclf.config.train import TrainParams
from textclf.data.prepared import read_labels, read_split
from textclf.data.text import ModelMeta, Normalizer, TextEncoder
from textclf.errors import ArtifactError
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
    from dvclive.lightning import DVCLiveLogger
    from lightning.pytorch.callbacks import ModelCheckpoint

    from textclf.models.backbone import load_classifier, load_tokenizer, resolve_backbone
    from textclf.models.datamodule import TextDataModule
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

    # Under multi-process DDP every rank runs this function; only rank 0 writes outputs.
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    writer = getattr(rank_zero_only, "rank", 0) == 0  # set from RANK / LOCAL_RANK at import
    reports = io.atomic_dir(paths.train_reports) if writer else tempfile.TemporaryDirectory()
    with tempfile.TemporaryDirectory(prefix="textclf-train-") as scratch, reports as live_dir:
        logger = DVCLiveLogger(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None)
        checkpoint = ModelCheckpoint(
            dirpath=scratch,
            monitor="val/macro_f1",
            mode="max",
            save_top_k=1,
            save_weights_only=True,
            filename="best-{step}",
        )
        trainer = L.Trainer(
            accelerator=cfg.accelerator,
            devices=cfg.devices,
            num_nodes=cfg.num_nodes,
            strategy=cfg.strategy,
            precision=cfg.precision,
            max_epochs=cfg.epochs,
            max_steps=cfg.max_steps,
            val_check_interval=1.0 / cfg.val_checks_per_epoch,
            accumulate_grad_batches=cfg.accumulate_grad_batches,
            gradient_clip_val=cfg.gradient_clip_val or None,
            logger=logger,
            callbacks=[checkpoint],
            deterministic="warn",
            num_sanity_val_steps=0,
            log_every_n_steps=10,
            enable_model_summary=False,
            enable_progress_bar=(
                enable_progress_bar if enable_progress_bar is not None else os.isatty(2)
            ),
            default_root_dir=scratch,
        )
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        seconds = time.perf_counter() - started
        best_path = checkpoint.best_model_path  # saved by global rank 0 only
        summary = {
            "best_val_macro_f1": float(checkpoint.best_model_score or 0.0),
            "best_checkpoint": Path(best_path).stem,
            "train_seconds": round(seconds, 2),
            "train_samples_per_second": round(
                module.samples_seen * trainer.world_size / seconds, 2
            ),
            "train_rows": len(train_df),
            "global_steps": int(trainer.global_step),
            "world_size": trainer.world_size,
            "accelerator": type(trainer.accelerator).__name__,
            "precision": cfg.precision,
        }
        if writer and trainer.is_global_zero:
            if not best_path:
                raise ArtifactError(
                    "training produced no checkpoint: was validation ever run? "
                    "Fix: check train.val_checks_per_epoch and the val split."
                )
            state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
            module.load_state_dict(state)
            live = logger.experiment
            live.summary["best"] = {
                "val_macro_f1": summary["best_val_macro_f1"],
                "checkpoint": summary["best_checkpoint"],
            }
            live.summary["run"] = {k: v for k, v in summary.items() if not k.startswith("best")}
            TrainMetrics.model_validate(live.summary)  # a malformed summary fails before writing
            live.make_summary()
            with io.atomic_dir(paths.model_dir) as out:
                module.model.save_pretrained(out)
                tokenizer.save_pretrained(out)
                meta.save(out)
    return summary
