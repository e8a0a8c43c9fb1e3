"""``reports/train/metrics.json``: DVCLive's summary of training, with the best and run figures.

DVCLive writes the file (its last logged ``train``/``val`` values, ``step``, ``epoch``); the
stage adds ``best`` and ``run`` and validates the summary through this model before DVCLive
writes it.
"""

from __future__ import annotations

from typing import ClassVar

from textclf.outputs.base import Report


class Best(Report):
    """The checkpoint kept: the best validation macro-F1."""

    val_macro_f1: float
    checkpoint: str


class TrainRun(Report):
    """How the run went."""

    train_seconds: float
    train_samples_per_second: float
    train_rows: int
    global_steps: int
    world_size: int = 1
    accelerator: str
    precision: str


class TrainMetrics(Report):
    """The training summary."""

    STAGE: ClassVar[str] = "train"

    best: Best
    run: TrainRun
