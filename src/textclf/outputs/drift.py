"""``reports/drift/summary.json``: Evidently's drift verdict, current split vs reference sample."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from textclf.outputs.base import Report


class DriftColumn(Report):
    """One column's drift test."""

    type: str
    method: str
    score: float | None = None
    threshold: float | None = None
    drifted: bool


class DriftSummary(Report):
    """The verdict, why, and every column's test."""

    STAGE: ClassVar[str] = "drift"

    drift_detected: bool
    n_drifted: int
    n_columns: int
    drifted_columns: list[str]
    reasons: list[str]
    columns: dict[str, DriftColumn]
    rows: dict[str, int] = Field(default_factory=dict)  # reference and current row counts
