"""The Lightning run train and distill share: trainer, best checkpoint by validation macro-F1."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from textclf.config.train import TrainParams
from textclf.errors import ArtifactError


def is_writer() -> bool:
    """Under multi-process DDP every rank runs the stage; only rank 0 writes outputs."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0  # set from RANK / LOCAL_RANK at import


def fit_best(
    module: Any,
    datamodule: Any,
    cfg: TrainParams,
    live_dir: Path,
    *,
    epochs: int,
    max_steps: int,
    train_rows: int,
    enable_progress_bar: bool | None = None,
) -> tuple[dict[str, Any], Any]:
    """Fit ``module`` with the ``train`` section's trainer settings, then load the checkpoint
    with the best validation macro-F1 into it (on the writing rank). Returns the run summary
    and the DVCLive logger (its ``experiment`` is the Live object of ``live_dir``)."""
    import lightning as L
    import torch
    from dvclive.lightning import DVCLiveLogger
    from lightning.pytorch.callbacks import ModelCheckpoint

    with tempfile.TemporaryDirectory(prefix="textclf-fit-") as scratch:
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
            max_epochs=epochs,
            max_steps=max_steps,
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
            "train_rows": train_rows,
            "global_steps": int(trainer.global_step),
            "world_size": trainer.world_size,
            "accelerator": type(trainer.accelerator).__name__,
            "precision": cfg.precision,
            "is_global_zero": trainer.is_global_zero,
        }
        if trainer.is_global_zero and is_writer():
            if not best_path:
                raise ArtifactError(
                    "training produced no checkpoint: was validation ever run? "
                    "Fix: check train.val_checks_per_epoch and the val split."
                )
            state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
            module.load_state_dict(state)
    return summary, logger


def write_live_summary(logger: Any, summary: dict[str, Any], model: type[Any]) -> None:
    """Add ``best`` and ``run`` to DVCLive's summary, validate it through ``model`` (a malformed
    summary fails before anything is written), then let DVCLive write it."""
    live = logger.experiment
    live.summary["best"] = {
        "val_macro_f1": summary["best_val_macro_f1"],
        "checkpoint": summary["best_checkpoint"],
    }
    live.summary["run"] = {
        k: v for k, v in summary.items() if not k.startswith("best") and k != "is_global_zero"
    }
    model.model_validate(live.summary)
    live.make_summary()
