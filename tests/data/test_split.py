"""De-duplication and splitting: no text in two splits, stratified, seeded, clear size errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import tiny_params
from textclf.config.params import parse_params
from textclf.data.split import check_class_sizes, dedup_key, deduplicate, min_rows_per_class, split
from textclf.errors import DataError
from textclf.paths import Paths
from textclf.stages import prepare


def _frame(texts: list[str], labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"text": texts, "label": labels, "row": range(1, len(texts) + 1)})


def test_dedup_key_ignores_case_space_and_width() -> None:
    assert (
        dedup_key("  Hello   World ") == dedup_key("hello world") == dedup_key("ＨＥＬＬＯ world")
    )


def test_deduplicate_drops_copies_and_conflicts() -> None:
    df = _frame(["a", "A ", "b", "B", "c"], ["x", "x", "x", "y", "y"])
    kept, stats = deduplicate(df, "drop")
    assert kept["text"].tolist() == ["a", "c"]
    assert (stats.duplicates_removed, stats.conflicting_texts, stats.conflicting_rows_removed) == (
        1,
        1,
        2,
    )
    kept, stats = deduplicate(df, "first")
    assert kept["text"].tolist() == ["a", "b", "c"]
    assert kept["label"].tolist() == ["x", "x", "y"]


def test_split_is_disjoint_stratified_seeded_and_capped() -> None:
    from textclf_dev.toy import toy_frame

    df = toy_frame(600).assign(row=range(1, 601))
    params = parse_params(tiny_params(prepare={"max_train_rows": 300, "reference_size": 90}))
    parts = split(df, params.prepare)
    texts = {name: set(part["text"]) for name, part in parts.items()}
    assert not texts["train"] & texts["val"]
    assert not texts["train"] & texts["test"]
    assert not texts["val"] & texts["test"]
    assert texts["reference"] <= texts["train"]
    assert len(parts["train"]) == 300 and len(parts["reference"]) == 90
    assert len(parts["test"]) == 90  # test_size 0.15 of 600
    for part in ("train", "val", "test"):
        shares = parts[part]["label"].value_counts(normalize=True)
        assert shares.max() - shares.min() < 0.05, part  # classes are balanced in the toy data
    again = split(df, params.prepare)
    for name in parts:
        pd.testing.assert_frame_equal(parts[name], again[name])
    other = split(df, parse_params(tiny_params(prepare={"seed": 7})).prepare)
    assert set(other["test"]["text"]) != texts["test"]


def test_too_small_class_is_reported_with_fix() -> None:
    params = parse_params(tiny_params()).prepare
    need = min_rows_per_class(params)
    df = _frame([f"t{i}" for i in range(need + 4)], ["a"] * need + ["b"] * 4)
    with pytest.raises(DataError) as err:
        check_class_sizes(df, ["a", "b", "c"], params, "data/x.csv")
    msg = str(err.value)
    assert "data/x.csv" in msg and "'b' has 4" in msg and "'c' has 0" in msg
    assert f"at least {need}" in msg and "prepare.test_size" in msg


def test_prepare_stage_writes_splits_and_summary(toy_root: Path) -> None:
    from textclf import io

    # Duplicate two rows (one with a conflicting label) to see them removed.
    csv = toy_root / "data" / "toy.csv"
    df = pd.read_csv(csv)
    extra = pd.DataFrame(
        {
            "text": [df.text[0].upper(), df.text[1]],
            "label": [df.label[0], "positive" if df.label[1] != "positive" else "negative"],
        }
    )
    pd.concat([df, extra]).to_csv(csv, index=False)
    params = parse_params(tiny_params())
    summary = prepare.run(params, Paths(toy_root))
    assert summary["rows_raw"] == 302
    assert summary["duplicates_removed"] == 1
    assert summary["conflicting_rows_removed"] == 2
    assert summary["rows_after_dedup"] == 299
    paths = Paths(toy_root)
    sizes = {n: len(pd.read_parquet(paths.split(n))) for n in ("train", "val", "test")}
    assert sum(sizes.values()) == 299
    assert io.read_json(paths.labels_file) == {"labels": params.data.labels}
    assert io.read_json(paths.data_summary)["splits"]["test"]["rows"] == sizes["test"]
