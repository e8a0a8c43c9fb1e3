"""``reports/prepare/summary.json``: the raw data, what de-duplication removed, the splits, and
the data expectations (``data.expectations.yaml``) with the figures they were checked on."""

from __future__ import annotations

from typing import ClassVar, Literal

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


class DataMeasures(Report):
    """The figures the data expectations bound, measured on every run (bounded or not).

    Rates of duplicates and conflicting labels are of the validated raw rows; the rest of the
    de-duplicated rows. ``text_chars`` holds the percentiles ``p1`` ... ``p99``.
    """

    rows_raw: int
    rows_deduplicated: int
    duplicate_rate: float
    conflicting_label_rate: float
    class_rows: dict[str, int]
    class_share: dict[str, float]
    text_chars: dict[str, float]
    only_urls_mentions_share: float

    def value(self, measure: str, label: str | None = None) -> float | None:
        """The figure a rule names (``class_share`` of ``label``, ``text_chars.p95``, ...);
        None when it was not measured (a label the data lacks, a figure older code did not
        record)."""
        found: object
        if measure in ("class_share", "class_rows"):
            per_label: dict[str, float] | dict[str, int] = getattr(self, measure)
            found = per_label.get(label) if label is not None else None
        elif measure.startswith("text_chars."):
            found = self.text_chars.get(measure.removeprefix("text_chars."))
        else:
            found = getattr(self, measure, None)
        if isinstance(found, int | float) and not isinstance(found, bool):
            return float(found)
        return None


class ExpectationResult(Report):
    """One bound of ``data.expectations.yaml`` on one figure, and whether the data met it."""

    key: str  # the file's key, e.g. class_share.min or text_chars.p95.max
    label: str | None = None  # the label a per-label bound applies to
    op: Literal["min", "max"]
    bound: float
    measured: float | None
    passed: bool


class ExpectationsSummary(Report):
    """The expectations file ``prepare`` checked, the figures it measured and each result."""

    file: str
    measured: DataMeasures
    results: list[ExpectationResult]

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return all(r.passed for r in self.results)


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
    #: Absent (None) in files written by code from before ``data.expectations.yaml``.
    expectations: ExpectationsSummary | None = None

    def labels(self) -> list[str]:
        """The labels, in the order the splits list them."""
        return list(next(iter(self.splits.values())).labels) if self.splits else []
