"""``reports/export/metrics.json``: parity of the ONNX graphs with torch, sizes, CPU latency."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from textclf.outputs.base import Report


class TorchFigures(Report):
    """The trained torch model, the reference of the parity checks."""

    macro_f1: float
    size_mb: float


class GraphFigures(Report):
    """One exported graph (fp32 or int8) against torch on the test split."""

    max_abs_logit_diff: float
    agreement: float  # share of texts with the same label as torch
    macro_f1: float
    macro_f1_drop: float  # torch's macro-F1 minus this graph's
    size_mb: float
    model_version: str


class Gates(Report):
    """The export gates' limits (from params) and whether both graphs passed them."""

    passed: bool
    max_abs_logit_diff: float
    int8_min_agreement: float
    int8_max_f1_drop: float


class EngineLatency(Report):
    """One engine's timing at one batch size."""

    p50_ms: float
    p95_ms: float
    texts_per_s: float
    speedup_vs_torch: float | None = None  # torch's time over this engine's


class DistillSide(Report):
    """The teacher or the student in the export's comparison (int8 graphs, same run)."""

    layers: int
    int8_size_mb: float
    int8_macro_f1: float
    texts_per_s: dict[str, float]  # batch_<n> -> texts/s


class DistillComparison(Report):
    """With distillation on: the student against the teacher, whichever ships."""

    shipped: str  # "teacher" or "student"
    student: DistillSide
    teacher: DistillSide
    throughput_ratio: dict[str, float | None]  # batch_<n> -> student texts/s over the teacher's
    size_ratio: float | None
    macro_f1_drop: float  # teacher's int8 macro-F1 minus the student's


class ExportMetrics(Report):
    """Everything the export stage measured; ``latency`` maps ``batch_<n>`` to engines, plus
    ``threads`` (the CPU threads used while timing)."""

    STAGE: ClassVar[str] = "export"

    torch: TorchFigures
    fp32: GraphFigures
    int8: GraphFigures
    gates: Gates
    latency: dict[str, dict[str, EngineLatency] | int] = Field(default_factory=dict)
    distill: DistillComparison | None = None

    def latency_by_batch(self) -> dict[int, dict[str, EngineLatency]]:
        """Engine timings by batch size, smallest first."""
        rows = {
            int(key.removeprefix("batch_")): value
            for key, value in self.latency.items()
            if key.startswith("batch_") and isinstance(value, dict)
        }
        return dict(sorted(rows.items()))

    @property
    def threads(self) -> int | None:
        """CPU threads used while timing (None when not recorded)."""
        value = self.latency.get("threads")
        return value if isinstance(value, int) else None
