"""De-duplication and the seeded, stratified train/val/test split."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from textclf.config.data import PrepareParams
from textclf.data.prepared import LABEL, TEXT
from textclf.errors import DataError

_SPACE = re.compile(r"\s+")


def dedup_key(text: str) -> str:
    """The identity of a text for de-duplication: NFKC, case-folded, whitespace collapsed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


@dataclass(frozen=True)
class DedupStats:
    """What de-duplication removed."""

    duplicates_removed: int
    conflicting_texts: int
    conflicting_rows_removed: int


def deduplicate(df: pd.DataFrame, policy: str = "drop") -> tuple[pd.DataFrame, DedupStats]:
    """Keep one row per text. Copies with different labels are dropped (``drop``) or the first
    label is kept (``first``)."""
    key = df[TEXT].map(dedup_key)
    n_labels = df.groupby(key)[LABEL].transform("nunique")
    conflicting = n_labels > 1
    n_conflicting_texts = int(key[conflicting].nunique())
    if policy == "drop":
        kept = df[~conflicting]
        dropped_conflicts = int(conflicting.sum())
    else:
        kept = df
        dropped_conflicts = 0
    kept_key = key.loc[kept.index]
    deduped = kept[~kept_key.duplicated(keep="first")]
    stats = DedupStats(
        duplicates_removed=len(kept) - len(deduped),
        conflicting_texts=n_conflicting_texts,
        conflicting_rows_removed=dropped_conflicts,
    )
    return deduped.reset_index(drop=True), stats


@dataclass(frozen=True)
class NewRowStats:
    """What :func:`new_rows` kept and dropped of candidate rows."""

    rows_read: int
    duplicates_removed: int  # copies among the candidates, and texts the existing data has
    already_present: int  # of those, texts the existing data already has
    conflicting_rows_removed: int
    rows_added: int


def new_rows(
    candidates: pd.DataFrame, existing: pd.DataFrame, policy: str = "drop"
) -> tuple[pd.DataFrame, NewRowStats]:
    """The rows of ``candidates`` whose text ``existing`` lacks (compared by :func:`dedup_key`,
    as :func:`deduplicate` does), one per text: copies among them are removed as
    :func:`deduplicate` removes them (``policy`` for conflicting labels)."""
    deduped, stats = deduplicate(candidates, policy)
    known = set(existing[TEXT].map(dedup_key))
    fresh = ~deduped[TEXT].map(dedup_key).isin(known)
    kept = deduped[fresh].reset_index(drop=True)
    present = int((~fresh).sum())
    return kept, NewRowStats(
        rows_read=len(candidates),
        duplicates_removed=stats.duplicates_removed + present,
        already_present=present,
        conflicting_rows_removed=stats.conflicting_rows_removed,
        rows_added=len(kept),
    )


def min_rows_per_class(params: PrepareParams) -> int:
    """Fewest rows a class needs so that train, val and test each get at least one."""
    smallest = min(params.test_size, params.val_size, 1 - params.test_size - params.val_size)
    return max(3, math.ceil(1 / smallest))


def check_class_sizes(
    df: pd.DataFrame, labels: list[str], params: PrepareParams, source: str
) -> None:
    """Fail when a class is too small to appear in every split."""
    counts = df[LABEL].value_counts()
    need = min_rows_per_class(params)
    small = {lab: int(counts.get(lab, 0)) for lab in labels if counts.get(lab, 0) < need}
    if small:
        listed = ", ".join(f"'{k}' has {v}" for k, v in small.items())
        raise DataError(
            f"{source}: too few rows to split after de-duplication: {listed}; each class needs "
            f"at least {need} (test_size={params.test_size}, val_size={params.val_size}). Fix: "
            "add rows for those classes, remove them from data.labels, or raise "
            "prepare.test_size / prepare.val_size."
        )


def _stratified_cap(df: pd.DataFrame, cap: int | None, seed: int) -> pd.DataFrame:
    if cap is None or len(df) <= cap:
        return df
    n_classes = df[LABEL].nunique()
    if cap < n_classes:
        raise DataError(
            f"a cap of {cap} rows cannot hold all {n_classes} classes. Fix: raise "
            "prepare.max_train_rows / prepare.max_val_rows to at least the number of labels."
        )
    kept, _ = train_test_split(df, train_size=cap, stratify=df[LABEL], random_state=seed)
    return kept


def split(df: pd.DataFrame, params: PrepareParams) -> dict[str, pd.DataFrame]:
    """Split into ``train``/``val``/``test`` (stratified, seeded) plus a ``reference`` sample."""
    rest, test = train_test_split(
        df, test_size=params.test_size, stratify=df[LABEL], random_state=params.seed
    )
    val_share = params.val_size / (1 - params.test_size)
    train, val = train_test_split(
        rest, test_size=val_share, stratify=rest[LABEL], random_state=params.seed
    )
    train = _stratified_cap(train, params.max_train_rows, params.seed)
    val = _stratified_cap(val, params.max_val_rows, params.seed)
    reference = train.sample(n=min(params.reference_size, len(train)), random_state=params.seed)
    splits = {"train": train, "val": val, "test": test, "reference": reference}
    return {name: part.sort_values("row").reset_index(drop=True) for name, part in splits.items()}


def add_train_only(
    parts: dict[str, pd.DataFrame], extra: pd.DataFrame, first_row: int
) -> dict[str, pd.DataFrame]:
    """``parts`` with the train-only rows ``extra`` appended to ``train`` (after its cap, so none
    is sampled out) and to no other split. Their ``row`` is ``first_row``, ``first_row + 1``, ...
    (past the corpus's rows), so a train row is still named by one number."""
    if extra.empty:
        return parts
    added = extra[[TEXT, LABEL]].assign(row=range(first_row, first_row + len(extra)))
    train = pd.concat([parts["train"], added[parts["train"].columns]], ignore_index=True)
    return {**parts, "train": train}
