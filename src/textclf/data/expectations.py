"""The data expectations (``data.expectations.yaml``) checked on the data with pandera.

:func:`measure` records every figure the file can bound; :func:`check` builds one pandera check
per bound (on the validated raw rows for duplicate and conflicting-label rates, on the
de-duplicated rows for the rest), validates lazily so that every failure is collected, and raises
one :class:`DataError` that names each failing key, its measured value, its bound, the data file
and the fix.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from textclf.config.expectations import (
    CHANGE_FIX,
    EXPECTATIONS_FILE,
    PERCENTILES,
    DataExpectations,
    Rule,
)
from textclf.data.prepared import LABEL, TEXT
from textclf.data.split import dedup_key
from textclf.errors import DataError
from textclf.outputs.prepare import DataMeasures, ExpectationResult, ExpectationsSummary
from textclf.text_features import MENTION, URL

Measure = Callable[[pd.DataFrame], float | None]

# Per-row features the checks aggregate, computed once per frame (:func:`raw_features`,
# :func:`deduped_features`).
KEY, CONFLICTING, CHARS, ONLY_LINKS = "dedup_key", "conflicting", "chars", "only_urls_mentions"


def only_urls_mentions(text: str) -> bool:
    """Whether a text is URLs and @mentions and nothing else but spaces and punctuation."""
    rest = MENTION.sub("", URL.sub("", text))
    if rest == text:
        return False
    return all(c.isspace() or unicodedata.category(c).startswith("P") for c in rest)


def raw_features(raw: pd.DataFrame) -> pd.DataFrame:
    """``text`` and ``label`` of the raw rows, with each text's de-duplication key and whether
    the text appears with another label too."""
    out = raw[[TEXT, LABEL]].reset_index(drop=True)
    key = out[TEXT].map(dedup_key)
    conflicting = out.groupby(key)[LABEL].transform("nunique") > 1
    return out.assign(**{KEY: key, CONFLICTING: conflicting})


def deduped_features(deduped: pd.DataFrame) -> pd.DataFrame:
    """``text`` and ``label`` of the de-duplicated rows, with each text's length in characters
    and whether it is only URLs and @mentions."""
    out = deduped[[TEXT, LABEL]].reset_index(drop=True)
    return out.assign(**{CHARS: out[TEXT].str.len(), ONLY_LINKS: out[TEXT].map(only_urls_mentions)})


def _share(rows: pd.Series) -> float | None:
    return float(rows.mean()) if len(rows) else None


def duplicate_rate(rows: pd.DataFrame) -> float | None:
    """Share of rows whose text (by :func:`dedup_key`) an earlier row already has."""
    return _share(rows[KEY].duplicated())


def conflicting_label_rate(rows: pd.DataFrame) -> float | None:
    """Share of rows whose text (by :func:`dedup_key`) also appears with another label."""
    return _share(rows[CONFLICTING])


def only_urls_mentions_share(rows: pd.DataFrame) -> float | None:
    """Share of texts that :func:`only_urls_mentions` holds for."""
    return _share(rows[ONLY_LINKS])


def text_chars(rows: pd.DataFrame, q: int) -> float | None:
    """Percentile ``q`` of text length in characters (None without rows)."""
    return float(rows[CHARS].quantile(q / 100)) if len(rows) else None


def class_rows(rows: pd.DataFrame, label: str) -> int:
    """Rows labelled ``label``."""
    return int((rows[LABEL] == label).sum())


def class_share(rows: pd.DataFrame, label: str) -> float | None:
    """Share of rows labelled ``label`` (None without rows)."""
    return _share(rows[LABEL] == label)


def measure(raw: pd.DataFrame, deduped: pd.DataFrame, labels: Sequence[str]) -> DataMeasures:
    """Every figure the expectations can bound, for the summary and the review (of the
    :func:`raw_features` and :func:`deduped_features` frames)."""
    shares = {lab: class_share(deduped, lab) for lab in labels}
    chars = {f"p{q}": text_chars(deduped, q) for q in PERCENTILES}
    return DataMeasures(
        rows_raw=len(raw),
        rows_deduplicated=len(deduped),
        duplicate_rate=duplicate_rate(raw) or 0.0,
        conflicting_label_rate=conflicting_label_rate(raw) or 0.0,
        class_rows={lab: class_rows(deduped, lab) for lab in labels},
        class_share={lab: v for lab, v in shares.items() if v is not None},
        text_chars={k: v for k, v in chars.items() if v is not None},
        only_urls_mentions_share=only_urls_mentions_share(deduped) or 0.0,
    )


#: The figures measured on the raw rows; every other figure is of the de-duplicated rows.
_RAW_MEASURES: dict[str, Measure] = {
    "duplicate_rate": duplicate_rate,
    "conflicting_label_rate": conflicting_label_rate,
}


def _measure_of(rule: Rule) -> Measure:
    """The function that measures ``rule``'s figure on its features frame."""
    if rule.measure in _RAW_MEASURES:
        return _RAW_MEASURES[rule.measure]
    if rule.measure == "only_urls_mentions_share":
        return only_urls_mentions_share
    if rule.measure.startswith("text_chars.p"):
        q = int(rule.measure.removeprefix("text_chars.p"))
        return lambda rows: text_chars(rows, q)
    label = str(rule.label)
    if rule.measure == "class_rows":
        return lambda rows: class_rows(rows, label)
    return lambda rows: class_share(rows, label)


def _check(rule: Rule) -> pa.Check:
    """A dataframe-level pandera check: ``rule``'s figure of the frame meets its bound."""
    figure = _measure_of(rule)
    return pa.Check(lambda frame: rule.passes(figure(frame)), name=rule.name)


def schemas(rules: Sequence[Rule]) -> tuple[pa.DataFrameSchema, pa.DataFrameSchema]:
    """The pandera schemas of the raw rows and of the de-duplicated rows (their features
    frames), one dataframe-level check per rule."""
    rows = {TEXT: pa.Column(), LABEL: pa.Column()}  # validated by load.validate already
    raw = pa.DataFrameSchema(
        {**rows, KEY: pa.Column(str), CONFLICTING: pa.Column(bool)},
        checks=[_check(r) for r in rules if r.measure in _RAW_MEASURES],
        name="raw rows",
    )
    deduped = pa.DataFrameSchema(
        {**rows, CHARS: pa.Column(int), ONLY_LINKS: pa.Column(bool)},
        checks=[_check(r) for r in rules if r.measure not in _RAW_MEASURES],
        name="de-duplicated rows",
    )
    return raw, deduped


def _failed(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> set[str]:
    """The names of the checks of ``schema`` that ``frame`` fails (all of them: lazy)."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as err:
        return {str(name) for name in err.failure_cases["check"]}
    return set()


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "not measured"
    return f"{value:.4g}"


def failure_line(rule: Rule, measured: float | None) -> str:
    """One failed expectation: the file and key, the figure, its measured value, the bound."""
    missing = (
        f" (label '{rule.label}' is not in the data's labels)"
        if rule.label is not None and measured is None
        else ""
    )
    return (
        f"{EXPECTATIONS_FILE}: {rule.name}: {rule.what} is {_fmt(measured)}{missing}, "
        f"expected {rule.bound_text()}"
    )


def check(
    raw: pd.DataFrame,
    deduped: pd.DataFrame,
    labels: Sequence[str],
    expectations: DataExpectations,
    source: str,
) -> ExpectationsSummary:
    """Check every expectation on the data; raise one :class:`DataError` listing each failure."""
    rules = expectations.rules(labels)
    raw_rows, deduped_rows = raw_features(raw), deduped_features(deduped)
    measured = measure(raw_rows, deduped_rows, labels)
    raw_schema, deduped_schema = schemas(rules)
    failed = _failed(raw_schema, raw_rows) | _failed(deduped_schema, deduped_rows)
    results = [
        ExpectationResult(
            key=r.key,
            label=r.label,
            op=r.op,
            bound=r.bound,
            measured=measured.value(r.measure, r.label),
            passed=r.name not in failed,
        )
        for r in rules
    ]
    failures = [(r, res.measured) for r, res in zip(rules, results, strict=True) if not res.passed]
    if failures:
        lines = "\n".join(f"  - {failure_line(r, m)}" for r, m in failures)
        raise DataError(
            f"{source} does not meet {len(failures)} of the {len(rules)} data expectation(s) "
            f"of {EXPECTATIONS_FILE}:\n{lines}\nFix: {CHANGE_FIX}."
        )
    return ExpectationsSummary(file=EXPECTATIONS_FILE, measured=measured, results=results)
