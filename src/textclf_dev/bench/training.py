"""Training throughput: our Lightning loop vs the Hugging Face ``Trainer``, same everything else.

Both runs fine-tune the same backbone (``model.backbone``) on the same rows of the prepared train
split, tokenised by the same encoder, with the same batch size, max length, precision, optimizer,
learning rate, weight decay and gradient clipping. The Trainer uses its standard dynamic padding
(``DataCollatorWithPadding``, shuffled batches); ours adds length bucketing
(``train.bucket_batches``). The first ``warmup`` steps are excluded from the timing in both.

Each run is a child process (:mod:`textclf_dev.bench.child`), so its peak RSS is its own and neither
loop inherits the other's warm caches; the loops alternate ``repeats`` times.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from textclf.config.params import Params, parse_params
from textclf.data.prepared import LABEL, TEXT
from textclf.data.text import ModelMeta, Normalizer, TextEncoder
from textclf.errors import ConfigError
from textclf.latency import format_ratio, ratio
from textclf.paths import Paths

LOOPS = ("hf_trainer", "lightning")


class _StepTimer:
    """Wall time and samples of the steps after a warm-up, for either loop."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = warmup_steps
        self.steps = 0
        self.samples = 0
        self.started: float | None = None
        self.seconds = 0.0

    def step_done(self, samples: int) -> None:
        self.steps += 1
        if self.steps == self.warmup_steps:
            self.started = time.perf_counter()
        elif self.started is not None:
            self.seconds = time.perf_counter() - self.started
            self.samples += samples

    def result(self) -> dict[str, Any]:
        timed = max(0, self.steps - self.warmup_steps)
        if not timed or self.seconds <= 0:
            raise ConfigError(
                f"only {self.steps} training step(s) ran, {self.warmup_steps} of "
                "them warm-up: nothing was timed. Fix: raise --train-steps or use "
                "a train split with more rows."
            )
        return {
            "samples_per_second": round(self.samples / self.seconds, 2),
            "timed_steps": timed,
            "timed_samples": self.samples,
            "seconds": round(self.seconds, 3),
        }


def _encoder(source: str, params: Params, labels: list[str]) -> tuple[Any, TextEncoder]:
    from textclf.models.backbone import load_tokenizer

    tokenizer = load_tokenizer(source)
    meta = ModelMeta(
        labels=labels,
        max_length=params.model.max_length,
        pad_token_id=int(tokenizer.pad_token_id),
        normalizer=Normalizer(**params.model.preprocess.model_dump()),
    )
    return tokenizer, TextEncoder(tokenizer.backend_tokenizer, meta)


def _ours(
    source: str, frame: pd.DataFrame, labels: list[str], params: Params, steps: int, warmup: int
) -> dict[str, Any]:
    """The train stage's loop (datamodule, module, Trainer flags) without logging or checkpoints."""
    import lightning as L

    from textclf.models.backbone import load_classifier
    from textclf.models.datamodule import TextDataModule
    from textclf.models.module import FineTuneModule

    cfg = params.train
    _, encoder = _encoder(source, params, labels)
    timer = _StepTimer(warmup)

    class Timing(L.Callback):
        def on_train_batch_end(
            self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            timer.step_done(int(batch["labels"].shape[0]))

    datamodule = TextDataModule(
        encoder,
        frame,
        frame.head(8),
        labels,
        cfg.batch_size,
        cfg.eval_batch_size,
        cfg.bucket_batches,
        cfg.seed,
    )
    module = FineTuneModule(
        load_classifier(source, labels, params.model.dropout),
        len(labels),
        cfg.learning_rate,
        cfg.weight_decay,
        cfg.warmup_ratio,
    )
    trainer = L.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        precision=cfg.precision,
        max_steps=steps + warmup,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        gradient_clip_val=cfg.gradient_clip_val or None,
        deterministic="warn",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Timing()],
    )
    trainer.fit(module, datamodule=datamodule)
    return {**timer.result(), "device": str(module.device)}


def _hf_trainer(
    source: str, frame: pd.DataFrame, labels: list[str], params: Params, steps: int, warmup: int
) -> dict[str, Any]:
    """``transformers.Trainer`` with its defaults for dynamic padding, on the same settings."""
    import tempfile

    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    from textclf.models.backbone import load_classifier

    cfg = params.train
    tokenizer, encoder = _encoder(source, params, labels)
    label_ids = {lab: i for i, lab in enumerate(labels)}
    ids = encoder.encode(frame[TEXT].tolist())
    dataset = [
        {"input_ids": x, "attention_mask": [1] * len(x), "labels": label_ids[y]}
        for x, y in zip(ids, frame[LABEL], strict=True)
    ]
    timer = _StepTimer(warmup)

    class Timing(TrainerCallback):
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            timer.step_done(cfg.batch_size)  # the dataset holds whole batches: no short batch

    model = load_classifier(source, labels, params.model.dropout)
    if cfg.precision == "bf16-true":
        model = model.to(torch.bfloat16)
    with tempfile.TemporaryDirectory(prefix="textclf-bench-hf-") as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=cfg.batch_size,
            max_steps=steps + warmup,
            learning_rate=cfg.learning_rate,
            weight_decay=cfg.weight_decay,
            seed=cfg.seed,
            warmup_steps=int((steps + warmup) * cfg.warmup_ratio),
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            eval_strategy="no",
            dataloader_num_workers=0,
            use_cpu=cfg.accelerator == "cpu",
            fp16=cfg.precision == "16-mixed",
            bf16=cfg.precision == "bf16-mixed",
            max_grad_norm=cfg.gradient_clip_val or 0.0,
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=[Timing()],
        )
        trainer.train()
    return {**timer.result(), "device": str(trainer.args.device)}


def rows_for(params: Params, steps: int, warmup: int) -> int:
    """Rows each loop trains on: exactly ``steps + warmup`` full batches (one epoch)."""
    return (steps + warmup) * params.train.batch_size


def loop(kind: str, params: dict[str, Any], root: str, steps: int, warmup: int) -> dict[str, Any]:
    """Time one loop (``lightning`` or ``hf_trainer``); run in a child process by :func:`run`."""
    import lightning as L
    import torch

    from textclf.data.prepared import read_labels, read_split
    from textclf.models.backbone import resolve_backbone

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # as the train stage does
    cfg = parse_params(params)
    paths = Paths(Path(root))
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    labels = read_labels(paths)
    train = read_split(paths, "train")
    n = rows_for(cfg, steps, warmup)
    if len(train) < n:
        raise ConfigError(
            f"{paths.split('train')} has {len(train)} rows; {steps} timed + "
            f"{warmup} warm-up steps of batch {cfg.train.batch_size} need {n}. "
            "Fix: lower --train-steps."
        )
    frame = train.sample(n=n, random_state=cfg.train.seed).reset_index(drop=True)
    source = resolve_backbone(cfg.model.backbone, paths.root)
    L.seed_everything(cfg.train.seed, verbose=False)
    fn = _ours if kind == "lightning" else _hf_trainer
    return {**fn(source, frame, labels, cfg, steps, warmup), "threads": torch.get_num_threads()}


def run(
    params: Params, root: Path, steps: int = 40, warmup: int = 3, repeats: int = 2
) -> dict[str, Any]:
    """Time ``steps`` optimizer steps of each loop; ratio = ours / HF Trainer (best runs).

    The two loops alternate ``repeats`` times and each keeps its best run, so a burst of load
    from another process on a shared machine does not decide the ratio.
    """
    from textclf.data.prepared import read_labels, read_split
    from textclf_dev.bench.child import run_child

    if steps < 1 or warmup < 1 or repeats < 1:
        raise ConfigError(
            f"training benchmark: steps={steps}, warmup={warmup}, "
            f"repeats={repeats}; each must be >= 1."
        )
    paths = Paths(Path(root))
    read_labels(paths)  # fail here, not in a child, when `dvc repro prepare` has not run
    train_rows = len(read_split(paths, "train"))
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in LOOPS}
    for _ in range(repeats):
        for kind in LOOPS:
            child = run_child(
                "textclf_dev.bench.training:loop",
                {
                    "kind": kind,
                    "params": params.model_dump(),
                    "root": str(Path(root).resolve()),
                    "steps": steps,
                    "warmup": warmup,
                },
            )
            runs[kind].append({**child["result"], "peak_rss_mb": child["peak_rss_mb"]})
    best = {k: max(r["samples_per_second"] for r in v) for k, v in runs.items()}
    peak = {k: max(r["peak_rss_mb"] for r in v) for k, v in runs.items()}
    return {
        "backbone": params.model.backbone,
        "batch_size": params.train.batch_size,
        "max_length": params.model.max_length,
        "precision": params.train.precision,
        "bucket_batches": params.train.bucket_batches,
        "rows": rows_for(params, steps, warmup),
        "train_rows_available": train_rows,
        "steps": steps,
        "warmup_steps": warmup,
        "repeats": repeats,
        "device": runs["lightning"][0]["device"],
        "threads": runs["lightning"][0]["threads"],
        "lightning_samples_per_second": best["lightning"],
        "hf_trainer_samples_per_second": best["hf_trainer"],
        "ratio_vs_hf_trainer": ratio(best["lightning"], best["hf_trainer"]),
        "lightning_peak_rss_mb": peak["lightning"],
        "hf_trainer_peak_rss_mb": peak["hf_trainer"],
        "peak_rss_ratio_vs_hf_trainer": ratio(peak["lightning"], peak["hf_trainer"]),
        "runs": runs,
    }


def markdown(results: dict[str, Any]) -> str:
    """A Markdown table of :func:`run`'s results."""
    r = results
    runs = {k: ", ".join(str(x["samples_per_second"]) for x in v) for k, v in r["runs"].items()}
    setup = (
        f"Backbone `{r['backbone']}`, batch {r['batch_size']}, max length {r['max_length']}, "
        f"precision {r['precision']}; {r['steps']} timed steps after {r['warmup_steps']} "
        f"warm-up on the same {r['rows']} training rows; best of {r['repeats']} alternating "
        "run(s), each in its own process."
    )
    hf, ours = r["hf_trainer_samples_per_second"], r["lightning_samples_per_second"]
    return "\n".join(
        [
            f"### Training throughput: Lightning loop vs HF Trainer ({r['device']}, "
            f"{r['threads']} threads)",
            "",
            setup,
            "",
            "| loop | samples/s | vs HF Trainer | peak RSS MiB | runs (samples/s) |",
            "|---|---:|---:|---:|---|",
            f"| HF `Trainer` (dynamic padding) | {hf:.1f} | 1.00x | "
            f"{r['hf_trainer_peak_rss_mb']:.0f} | {runs['hf_trainer']} |",
            f"| ours: Lightning + length bucketing ({r['bucket_batches']} batches/pool) | "
            f"{ours:.1f} | {format_ratio(r['ratio_vs_hf_trainer'])} | "
            f"{r['lightning_peak_rss_mb']:.0f} | {runs['lightning']} |",
        ]
    )
