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


class TrainOnlySummary(Report):
    """The rows of ``data.train_only_paths``: read, dropped, added to the train split only."""

    sources: dict[str, str]  # file -> md5
    rows_read: int
    duplicates_removed: int  # copies among them, and texts the corpus already has
    already_in_corpus: int  # of those, texts the corpus has (any split)
    conflicting_rows_removed: int
    rows_added: int


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
    #: Absent (None) when ``data.train_only_paths`` is empty, and in files older code wrote.
    train_only: TrainOnlySummary | None = None

    def labels(self) -> list[str]:
        """The labels, in the order the splits list them."""
        return list(next(iter(self.splits.values())).labels) if self.splits else []
