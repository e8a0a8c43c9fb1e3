"""prepare: validate, de-duplicate, check the data expectations, split (stratified, seeded), keep
a drift reference sample.

Rows of ``data.train_only_paths`` (e.g. labelled production requests) join the train split only,
after the corpus is split and capped: the test split of the corpus stays as it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from textclf import io
from textclf.config.data import DataParams, PrepareParams
from textclf.config.expectations import EXPECTATIONS_FILE, check_labels, load_expectations
from textclf.data import expectations
from textclf.data.load import load_dataset, load_train_only
from textclf.data.prepared import LABEL, TEXT
from textclf.data.split import (
    DedupStats,
    NewRowStats,
    add_train_only,
    check_class_sizes,
    deduplicate,
    new_rows,
    split,
)
from textclf.outputs.prepare import ExpectationsSummary, PrepareSummary
from textclf.paths import Paths

SPLITS = ("train", "val", "test", "reference")


class Inputs(Protocol):
    """The params sections this stage reads: `dvc.yaml` lists the same (a test checks)."""

    @property
    def data(self) -> DataParams: ...

    @property
    def prepare(self) -> PrepareParams: ...


def file_md5(path: Path) -> str:
    """MD5 of a file, the hash DVC uses, to name the data version in reports."""
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _describe(frame: pd.DataFrame, labels: list[str]) -> dict[str, Any]:
    lengths = frame[TEXT].str.len()
    counts = frame[LABEL].value_counts()
    return {
        "rows": len(frame),
        "labels": {lab: int(counts.get(lab, 0)) for lab in labels},
        "chars_mean": round(float(lengths.mean()), 2),
        "chars_p95": float(lengths.quantile(0.95)),
    }


@dataclass(frozen=True)
class Prepared:
    """The splits and what it took to make them."""

    raw: pd.DataFrame
    deduped: pd.DataFrame
    stats: DedupStats
    parts: dict[str, pd.DataFrame]
    train_only: NewRowStats | None  # None: no data.train_only_paths
    expectations: ExpectationsSummary  # of the corpus (data.path), before the split


def prepare_splits(params: Inputs, root: Path) -> Prepared:
    """Read, de-duplicate, check the data expectations, and split the corpus; add the
    train-only rows to ``train``.

    The expectations (``data.expectations.yaml``) hold for the corpus before it is split, or
    nothing is split. A train-only row whose text the corpus has (in any split, or removed as a
    copy or a conflict) is dropped, and so is a copy among them: no test text leaks into training.
    """
    data, prep = params.data, params.prepare
    bounds = load_expectations(Path(root) / EXPECTATIONS_FILE)
    check_labels(bounds, data.labels, EXPECTATIONS_FILE)
    raw = load_dataset(root, data)
    deduped, stats = deduplicate(raw, prep.conflicting_labels)
    checked = expectations.check(raw, deduped, data.labels, bounds, data.path)
    check_class_sizes(deduped, data.labels, prep, data.path)
    parts = split(deduped, prep)
    if not data.train_only_paths:
        return Prepared(raw, deduped, stats, parts, None, checked)
    extra, extra_stats = new_rows(load_train_only(root, data), raw, prep.conflicting_labels)
    parts = add_train_only(parts, extra, first_row=len(raw) + 1)
    return Prepared(raw, deduped, stats, parts, extra_stats, checked)


def run(params: Inputs, paths: Paths) -> dict[str, Any]:
    """Write the splits, ``labels.json`` and the data summary; return the summary."""
    data = params.data
    done = prepare_splits(params, paths.root)
    raw, deduped, stats, parts = done.raw, done.deduped, done.stats, done.parts
    for name in SPLITS:
        with io.atomic_path(paths.split(name)) as tmp:
            parts[name][["row", TEXT, LABEL]].to_parquet(tmp, index=False)
    io.write_json(paths.labels_file, {"labels": data.labels})
    summary = {
        "source": data.path,
        "source_md5": file_md5(paths.root / data.path),
        "rows_raw": len(raw),
        "duplicates_removed": stats.duplicates_removed,
        "conflicting_texts": stats.conflicting_texts,
        "conflicting_rows_removed": stats.conflicting_rows_removed,
        "rows_after_dedup": len(deduped),
        "splits": {name: _describe(parts[name], data.labels) for name in SPLITS},
    }
    if done.train_only is not None:  # absent without train-only files: the file as before
        summary["train_only"] = {
            "sources": {rel: file_md5(paths.root / rel) for rel in data.train_only_paths},
            "rows_read": done.train_only.rows_read,
            "duplicates_removed": done.train_only.duplicates_removed,
            "already_in_corpus": done.train_only.already_present,
            "conflicting_rows_removed": done.train_only.conflicting_rows_removed,
            "rows_added": done.train_only.rows_added,
        }
    summary["expectations"] = done.expectations.model_dump(mode="json")
    PrepareSummary.model_validate(summary).write(paths.data_summary)  # validated, then written
    return summary
