"""The headline figures of a run, defined once: ``textclf summary``, the model card and the PR
review show them with the same labels, the same formatting and the same noise floors.

A noise floor is the change below which two runs count as the same. Scores computed from
float32 probabilities differ by about 1e-8 between machines for the same model and data
(measured: ECE by 4e-9 and log-loss by 2.6e-8 between two CPU kinds), while one test text
moves a score by 1/n (2.7e-4 on the default 3,716 texts): :data:`SCORE_NOISE` sits between.
Timings on shared machines vary by tens of percent: :data:`TIME_NOISE` is relative.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from textclf.outputs.evaluate import EvaluateMetrics
from textclf.outputs.export import ExportMetrics
from textclf.outputs.train import TrainMetrics

#: Absolute change below which a score (F1, accuracy, calibration error, log-loss) is unchanged.
SCORE_NOISE = 1e-6
#: Relative change below which a timing (latency, training time) is unchanged.
TIME_NOISE = 0.10
#: Absolute change below which a graph size in MB is unchanged.
SIZE_NOISE_MB = 0.05
NA = "—"


@dataclass(frozen=True)
class Run:
    """The reports a headline reads (None where the stage has not run)."""

    evaluate: EvaluateMetrics | None = None
    export: ExportMetrics | None = None
    train: TrainMetrics | None = None


def _int8_p95(run: Run, batch: int) -> float | None:
    engines = run.export.latency_by_batch().get(batch, {}) if run.export else {}
    return engines["onnx_int8"].p95_ms if "onnx_int8" in engines else None


@dataclass(frozen=True)
class Figure:
    """One headline figure: how to read it, which direction is better, what counts as noise."""

    label: str
    source: str  # the report key it comes from: evaluate, train or export
    value: Callable[[Run], float | None]  # the figure in a run, None when its report is missing
    higher_is_better: bool | None
    noise: float = SCORE_NOISE
    relative: bool = False  # noise is a share of the base value

    def changed(self, new: float | None, old: float | None) -> bool | None:
        """Whether ``new`` differs from ``old`` by more than the noise floor (None: unknown)."""
        if new is None or old is None:
            return None
        floor = self.noise * abs(old) if self.relative else self.noise
        return abs(new - old) > floor

    def delta(self, new: float | None, old: float | None) -> str:
        """The signed change; ``≈0`` when it is below the noise floor."""
        changed = self.changed(new, old)
        if changed is None or new is None or old is None:
            return NA
        return signed(new - old) if changed else "≈0"

    def trend(self, new: float | None, old: float | None) -> str:
        """🟢 better, 🔴 worse, ⚪ within the noise floor or no preferred direction."""
        changed = self.changed(new, old)
        if changed is None or new is None or old is None:
            return ""
        if not changed or self.higher_is_better is None:
            return "⚪"
        return "🟢" if (new > old) == self.higher_is_better else "🔴"


def _ev(get: Callable[[EvaluateMetrics], float]) -> Callable[[Run], float | None]:
    return lambda run: get(run.evaluate) if run.evaluate else None


def _ex(get: Callable[[ExportMetrics], float]) -> Callable[[Run], float | None]:
    return lambda run: get(run.export) if run.export else None


FIGURES: tuple[Figure, ...] = (
    Figure("test macro-F1", "evaluate", _ev(lambda e: e.macro_f1), True),
    Figure("test accuracy", "evaluate", _ev(lambda e: e.accuracy), True),
    Figure("test weighted-F1", "evaluate", _ev(lambda e: e.weighted_f1), True),
    Figure("expected calibration error", "evaluate", _ev(lambda e: e.ece), False),
    Figure("log-loss", "evaluate", _ev(lambda e: e.log_loss), False),
    Figure("TF-IDF baseline macro-F1", "evaluate", _ev(lambda e: e.baseline.macro_f1), None),
    Figure("macro-F1 over baseline", "evaluate", _ev(lambda e: e.macro_f1_over_baseline), True),
    Figure(
        "best validation macro-F1",
        "train",
        lambda r: r.train.best.val_macro_f1 if r.train else None,
        True,
    ),
    Figure(
        "training time (s)",
        "train",
        lambda r: r.train.run.train_seconds if r.train else None,
        None,
        TIME_NOISE,
        relative=True,
    ),
    Figure("int8 test macro-F1", "export", _ex(lambda x: x.int8.macro_f1), True),
    Figure("int8 size (MB)", "export", _ex(lambda x: x.int8.size_mb), False, SIZE_NOISE_MB),
    Figure(
        "int8 p95 latency, batch 1 (ms)",
        "export",
        lambda r: _int8_p95(r, 1),
        False,
        TIME_NOISE,
        relative=True,
    ),
)


def fmt(value: object, digits: int | None = None) -> str:
    """A number for people: ``digits`` decimals when given, else 4 below 10 and fewer above
    (scientific below 1e-3); other values as text; None as —."""
    if value is None:
        return NA
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if digits is not None and math.isfinite(value):
        return f"{value:.{digits}f}"
    return _float(value)


def _float(value: float) -> str:
    magnitude = abs(value)
    if not math.isfinite(value):
        return str(value)
    if 0 < magnitude < 1e-3:
        return f"{value:.2e}"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{4 if magnitude < 10 else 2}f}"


def signed(value: float | None) -> str:
    """A signed difference, or — when unknown."""
    if value is None:
        return NA
    if value != 0 and abs(value) < 1e-3:
        return f"{value:+.2e}"
    return f"{value:+.4f}" if abs(value) < 10 else f"{value:+.2f}"


def summary_lines(run: Run) -> list[str]:
    """The run in three sentences (``textclf summary``, the model card's opening)."""
    lines: list[str] = []
    if ev := run.evaluate:
        lines.append(
            f"test macro-F1 {fmt(ev.macro_f1)} (TF-IDF + LR baseline "
            f"{fmt(ev.baseline.macro_f1)}), accuracy {fmt(ev.accuracy)}, "
            f"ECE {fmt(ev.ece)} on {ev.n} texts"
        )
    if ex := run.export:
        speed = ", ".join(
            f"{batch}: {fmt(engines['onnx_int8'].speedup_vs_torch, 2)}x"
            for batch, engines in ex.latency_by_batch().items()
            if "onnx_int8" in engines
        )
        lines.append(
            f"ONNX: fp32 max |logit diff| {ex.fp32.max_abs_logit_diff:.1e}; int8 "
            f"agreement {fmt(ex.int8.agreement)}, macro-F1 change "
            f"{-ex.int8.macro_f1_drop:+.4f}, {ex.int8.size_mb:.0f} MB, "
            f"speed vs torch by batch size {speed}"
        )
    return lines
