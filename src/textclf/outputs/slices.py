"""``reports/slices/metrics.json``: scores per data slice and the four-fifths disparity flags."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from textclf.outputs.base import Report


class SliceScores(Report):
    """One slice: its support, and its scores when it has enough rows to be scored."""

    support: int
    scored: bool
    accuracy: float | None = None
    macro_f1: float | None = None
    macro_f1_delta: float | None = None  # vs the whole test split
    reason: str | None = None  # why it was not scored


class Flag(Report):
    """A class predicted for a slice at under the threshold's share of the best slice's rate."""

    label: str = Field(alias="class")
    family: str
    slice: str
    rate: float
    max_rate: float
    max_slice: str
    ratio: float
    label_ratio: float | None = None


class SlicesReport(Report):
    """Every family's slices, the flags, and the settings they were judged with."""

    STAGE: ClassVar[str] = "slices"

    slices: dict[str, dict[str, SliceScores]]
    flagged: list[Flag]
    unscored: list[str]
    disparity_threshold: float
    min_support: int
    disparity: dict[str, Any] = Field(default_factory=dict)  # rates per class, family, slice
