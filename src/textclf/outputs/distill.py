"""``reports/distill/metrics.json``: the student's training run, or that distillation is off."""

from __future__ import annotations

from typing import ClassVar

from textclf.outputs.base import Report
from textclf.outputs.train import Best, TrainRun


class StudentFigures(Report):
    """The student against its teacher."""

    teacher_layers: int
    layers: int
    kept_layers: list[int]
    parameters: int
    teacher_parameters: int
    temperature: float
    alpha: float


class DistillMetrics(Report):
    """What the distill stage did: ``enabled`` false means nothing was trained."""

    STAGE: ClassVar[str] = "distill"

    enabled: bool
    shipped: bool = False
    best: Best | None = None
    run: TrainRun | None = None
    student: StudentFigures | None = None
