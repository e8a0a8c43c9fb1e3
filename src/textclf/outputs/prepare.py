"""``reports/prepare/summary.json``: the raw data, what de-duplication removed, the splits."""

from __future__ import annotations

from typing import ClassVar

from textclf.outputs.base import Report


class SplitSummary(Report):
    """One split: its rows, rows per label, and text length in characters."""

    rows: int
    labels: dict[str, int]
    chars_mean: float
    chars_p95: float


class PrepareSummary(Report):
    """What ``prepare`` read, removed and wrote."""

    STAGE: ClassVar[str] = "prepare"

    source: str
    source_md5: str
    rows_raw: int
    duplicates_removed: int
    conflicting_texts: int
    conflicting_rows_removed: int
    rows_after_dedup: int
    splits: dict[str, SplitSummary]

    def labels(self) -> list[str]:
        """The labels, in the order the splits list them."""
        return list(next(iter(self.splits.values())).labels) if self.splits else []
