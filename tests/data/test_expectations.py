"""Data expectations (data.expectations.yaml): each one fails on a frame made to break it, a
corpus-like frame passes them all, errors name the key, the value, the bound and the fix, and
``prepare`` stops before it writes anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPO, expectations_yaml, tiny_params
from textclf.cli import app
from textclf.config.expectations import (
    EXPECTATIONS_FILE,
    DataExpectations,
    load_expectations,
    parse_expectations,
)
from textclf.config.params import load_params, parse_params
from textclf.data import expectations
from textclf.data.load import load_dataset
from textclf.data.split import deduplicate
from textclf.errors import ConfigError, DataError
from textclf.outputs.prepare import PrepareSummary
from textclf.paths import Paths
from textclf.stages import prepare

LABELS = ["negative", "neutral", "positive"]
SHIPPED = load_expectations(REPO / EXPECTATIONS_FILE)
WORDS = ["flight", "delayed", "again", "love", "the", "crew", "great", "bag", "lost", "gate"]


def corpus(
    n: int = 6000, shares: tuple[float, ...] = (0.43, 0.39, 0.18), seed: int = 0
) -> pd.DataFrame:
    """Validated raw rows like the default corpus: its class shares, tweet-length unique texts."""
    rng = np.random.default_rng(seed)
    counts = [round(n * s) for s in shares]
    labels = [lab for lab, c in zip(LABELS, counts, strict=True) for _ in range(c)]
    texts = [
        f"{' '.join(rng.choice(WORDS, size=int(rng.integers(8, 22))))} number {i}"
        for i in range(len(labels))
    ]
    return pd.DataFrame({"text": texts, "label": labels, "row": range(1, len(labels) + 1)})


def run_check(
    raw: pd.DataFrame, bounds: DataExpectations = SHIPPED, labels: list[str] = LABELS
) -> Any:
    deduped, _ = deduplicate(raw, "drop")
    return expectations.check(raw, deduped, labels, bounds, "data/tweets.csv")


def failing(raw: pd.DataFrame, bounds: DataExpectations = SHIPPED) -> str:
    with pytest.raises(DataError) as err:
        run_check(raw, bounds)
    return str(err.value)


def bounds(**keys: Any) -> DataExpectations:
    """The shipped expectations with ``keys`` replaced."""
    return parse_expectations({**SHIPPED.model_dump(), **keys}, "test")


# ------------------------------------------------------------------ the negative control


def test_a_corpus_like_frame_meets_every_shipped_expectation() -> None:
    summary = run_check(corpus())
    assert summary.passed and len(summary.results) == len(SHIPPED.rules(LABELS)) > 10
    for result in summary.results:  # pandera's verdict and the recorded figure agree
        rule = next(
            r for r in SHIPPED.rules(LABELS) if (r.key, r.label) == (result.key, result.label)
        )
        assert rule.passes(result.measured) is result.passed
    assert summary.measured.class_rows == {"negative": 2580, "neutral": 2340, "positive": 1080}
    assert set(summary.measured.text_chars) == {f"p{q}" for q in (1, 5, 10, 25, 50, 75, 90, 95, 99)}


@pytest.mark.skipif(
    not (REPO / "data" / "tweets.csv").is_file(), reason="the default corpus is not in data/"
)
def test_the_default_corpus_meets_the_shipped_file_with_margin() -> None:
    params = load_params(REPO / "params.yaml")
    raw = load_dataset(REPO, params.data)
    summary = run_check(raw, labels=params.data.labels)
    assert summary.passed
    m = summary.measured
    assert m.duplicate_rate < SHIPPED.max_duplicate_rate / 2  # type: ignore[operator]
    assert m.conflicting_label_rate < SHIPPED.max_conflicting_label_rate / 2  # type: ignore[operator]


# ------------------------------------------------------------------ each expectation can fail


def _with_duplicates(raw: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([raw, raw.assign(text=raw["text"].str.upper())], ignore_index=True)


def _with_conflicts(raw: pd.DataFrame) -> pd.DataFrame:
    flipped = raw.head(600).assign(
        label=lambda f: f["label"].map(
            {"negative": "neutral", "neutral": "negative", "positive": "negative"}
        )
    )
    return pd.concat([raw, flipped], ignore_index=True)


def _without(raw: pd.DataFrame, label: str, keep: int = 0) -> pd.DataFrame:
    rows = raw[raw["label"] == label]
    return pd.concat([raw[raw["label"] != label], rows.head(keep)], ignore_index=True)


CASES = {
    "a label missing": (lambda f: _without(f, "positive"), SHIPPED, "class_share.min (positive)"),
    "one label too common": (
        lambda f: _without(f, "neutral", keep=200),
        SHIPPED,
        "class_share.max (negative)",
    ),
    "a per-label bound": (
        lambda f: f,
        bounds(class_share={"min": 0.1, "max": 0.6, "per_label": {"positive": {"min": 0.25}}}),
        "class_share.per_label.positive.min (positive)",
    ),
    "too few rows of a class": (
        lambda f: f,
        bounds(min_rows_per_class=2000),
        "min_rows_per_class (positive)",
    ),
    "texts cut short": (lambda f: f.assign(text=f["text"].str[:30]), SHIPPED, "text_chars.p50.min"),
    "texts too long": (lambda f: f.assign(text=f["text"] * 5), SHIPPED, "text_chars.p95.max"),
    "half the rows copies": (_with_duplicates, SHIPPED, "max_duplicate_rate"),
    "conflicting labels": (_with_conflicts, SHIPPED, "max_conflicting_label_rate"),
    "only links": (
        lambda f: f.assign(
            text=[
                f"@user{i} https://t.co/x{i} !" if i % 20 == 0 else t
                for i, t in enumerate(f["text"])
            ]
        ),
        SHIPPED,
        "max_only_urls_mentions_share",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_expectation_stops_a_frame_that_breaks_it(case: str) -> None:
    make, expected, key = CASES[case]
    msg = failing(make(corpus()), expected)
    assert f"data.expectations.yaml: {key}: " in msg, msg
    assert msg.startswith("data/tweets.csv does not meet")
    assert msg.endswith(
        "Fix: fix the data, or, if the change is intended, change data.expectations.yaml in the "
        "same PR (CODEOWNERS review)."
    )


def test_the_message_names_the_measured_value_and_the_bound() -> None:
    msg = failing(_with_duplicates(corpus()))
    line = next(ln for ln in msg.splitlines() if "max_duplicate_rate" in ln)
    assert line == (
        "  - data.expectations.yaml: max_duplicate_rate: share of raw rows that repeat an earlier "
        "row's text is 0.5, expected at most 0.1"
    )


def test_every_failing_expectation_is_reported_at_once() -> None:
    broken = _with_duplicates(_without(corpus(), "positive"))
    msg = failing(broken)
    assert "does not meet 3 of the" in msg
    for key in (
        "class_share.min (positive)",
        "min_rows_per_class (positive)",
        "max_duplicate_rate",
    ):
        assert f"data.expectations.yaml: {key}: " in msg
    assert "is 0, expected at least 0.1" in msg


def test_null_means_not_checked() -> None:
    loose = parse_expectations(
        {
            "class_share": None,
            "min_rows_per_class": None,
            "text_chars": {"p50": None},
            "max_duplicate_rate": None,
        },
        "test",
    )
    assert loose.rules(LABELS) == []
    assert run_check(_with_duplicates(_without(corpus(), "positive")), loose).passed


def test_no_bound_hides_in_the_code() -> None:
    """One source: every bound in force is written in the file; a key left out checks nothing."""
    assert DataExpectations().rules(LABELS) == []
    assert parse_expectations(None, "an empty file").rules(LABELS) == []


def test_a_per_label_bound_replaces_only_the_keys_it_gives() -> None:
    exp = bounds(class_share={"min": 0.1, "max": 0.6, "per_label": {"positive": {"min": None}}})
    shares = [r for r in exp.rules(LABELS) if r.measure == "class_share"]
    positive = {r.key for r in shares if r.label == "positive"}
    assert positive == {"class_share.max"}  # min: null replaced (not checked), max kept
    assert {r.key for r in shares if r.label == "negative"} == {
        "class_share.min",
        "class_share.max",
    }


def test_only_urls_and_mentions() -> None:
    assert expectations.only_urls_mentions("@bob https://t.co/abc !!")
    assert expectations.only_urls_mentions("www.example.com")
    assert not expectations.only_urls_mentions("@bob thanks!")
    assert not expectations.only_urls_mentions("@bob 😊")  # an emoji carries meaning
    assert not expectations.only_urls_mentions("...")  # no link at all


# ------------------------------------------------------------------ the file


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "max_duplicate_rat: 0.1\n",
            "unknown key 'max_duplicate_rat'. Fix: did you mean 'max_duplicate_rate'?",
        ),
        (
            "max_duplicate_rate: 2\n",
            "max_duplicate_rate = 2 is invalid: Input should be less than or equal to 1. Fix:",
        ),
        ("class_share: {min: 0.7, max: 0.2}\n", "min 0.7 is above max 0.2; swap them"),
        (
            "text_chars: {p95: {mni: 1}}\n",
            "unknown key 'text_chars.p95.mni'. Fix: did you mean 'min'?",
        ),
        ("min_rows_per_class: 0\n", "min_rows_per_class = 0 is invalid"),
        ("- max_duplicate_rate\n", "must be a mapping of expectation keys"),
    ],
)
def test_an_invalid_file_names_the_key_the_value_and_the_fix(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / EXPECTATIONS_FILE
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_expectations(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_check_params_validates_the_expectations_file(tmp_path: Path) -> None:
    def check(text: str) -> Any:
        (tmp_path / "e.yaml").write_text(text)
        return CliRunner().invoke(
            app,
            [
                "check-params",
                "--params",
                str(REPO / "params.yaml"),
                "--gate",
                str(REPO / "gate.yaml"),
                "--serve",
                str(REPO / "serve.yaml"),
                "--expectations",
                str(tmp_path / "e.yaml"),
            ],
        )

    ok = check((REPO / EXPECTATIONS_FILE).read_text())
    assert ok.exit_code == 0, ok.output
    assert '"max_duplicate_rate": 0.1' in ok.output
    bad = check("max_duplicate_rate: -1\n")
    assert bad.exit_code == 2 and "e.yaml has 1 invalid value(s)" in bad.output
    unknown = check("class_share: {per_label: {mixed: {min: 0.1}}}\n")
    assert unknown.exit_code == 2 and "class_share.per_label names ['mixed']" in unknown.output


# ------------------------------------------------------------------ in prepare


def _outputs(root: Path) -> list[Path]:
    return [
        p for d in ("artifacts", "reports") if (root / d).exists() for p in (root / d).rglob("*")
    ]


def test_prepare_records_the_figures_and_each_result(toy_root: Path) -> None:
    paths = Paths(toy_root)
    prepare.run(parse_params(tiny_params()), paths)
    summary = PrepareSummary.read(paths.data_summary)
    assert summary.expectations is not None and summary.expectations.passed
    assert summary.expectations.file == EXPECTATIONS_FILE
    assert summary.expectations.measured.rows_raw == 300
    keys = {(r.key, r.label) for r in summary.expectations.results}
    assert ("max_duplicate_rate", None) in keys and ("min_rows_per_class", "positive") in keys


def test_prepare_stops_on_a_broken_data_file_and_writes_nothing(toy_root: Path) -> None:
    csv = toy_root / "data" / "toy.csv"
    frame = pd.read_csv(csv)
    pd.concat([frame, frame], ignore_index=True).to_csv(csv, index=False)  # every row twice
    with pytest.raises(DataError) as err:
        prepare.run(parse_params(tiny_params()), Paths(toy_root))
    msg = str(err.value)
    assert msg.startswith("data/toy.csv does not meet 1 of the")
    assert (
        "data.expectations.yaml: max_duplicate_rate: " in msg
        and "is 0.5, expected at most 0.1" in msg
    )
    assert "Fix: fix the data, or, if the change is intended, change data.expectations.yaml" in msg
    assert _outputs(toy_root) == []


def test_prepare_needs_the_expectations_file(toy_root: Path) -> None:
    (toy_root / EXPECTATIONS_FILE).unlink()
    with pytest.raises(ConfigError, match="data.expectations.yaml not found. Fix: restore it"):
        prepare.run(parse_params(tiny_params()), Paths(toy_root))
    assert _outputs(toy_root) == []


def test_the_toy_expectations_differ_from_the_shipped_file_only_where_the_toy_needs_it() -> None:
    """The toy corpus fails the shipped bounds it overrides (so the overrides are needed)."""
    from textclf_dev.toy import toy_frame

    toy = toy_frame(300).assign(row=range(1, 301))
    toy_file = parse_expectations(yaml.safe_load(expectations_yaml()), "toy")
    assert run_check(toy, toy_file).passed
    msg = failing(toy)
    assert "min_rows_per_class (negative)" in msg and "text_chars.p50.min" in msg
