"""prepare: validate, de-duplicate, split (stratified, seeded), keep a drift reference sample."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from textclf import io
from textclf.config.data import DataParams, PrepareParams
from textclf.data.load import load_dataset
from textclf.data.prepared import LABEL, TEXT
from textclf.data.split import check_class_sizes, deduplicate, split
from textclf.outputs.prepare import PrepareSummary
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


def run(params: Inputs, paths: Paths) -> dict[str, Any]:
    """Write the splits, ``labels.json`` and the data summary; return the summary."""
    data, prep = params.data, params.prepare
    raw = load_dataset(paths.root, data)
    deduped, stats = deduplicate(raw, prep.conflicting_labels)
    check_class_sizes(deduped, data.labels, prep, data.path)
    parts = split(deduped, prep)
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
    PrepareSummary.model_validate(summary).write(paths.data_summary)  # validated, then written
    return summary
