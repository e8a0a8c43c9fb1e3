"""Data validation on deliberately broken files: each error names file, rows and the fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import tiny_params
from textclf.config.params import parse_params
from textclf.data.load import load_dataset
from textclf.errors import DataError


def _load(root: Path, **data: object) -> pd.DataFrame:
    return load_dataset(root, parse_params(tiny_params(data=dict(data))).data)


def _write(root: Path, text: str, name: str = "toy.csv") -> None:
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / name).write_text(text, encoding="utf-8")


def test_valid_csv_loads_with_row_numbers(tmp_path: Path) -> None:
    _write(tmp_path, "text,label\nhello,positive\nbye,negative\n")
    df = _load(tmp_path)
    assert df.to_dict("records") == [
        {"text": "hello", "label": "positive", "row": 1},
        {"text": "bye", "label": "negative", "row": 2},
    ]


def test_parquet_and_integer_labels(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    pd.DataFrame({"body": ["a", "b"], "y": [0, 1]}).to_parquet(tmp_path / "data" / "d.parquet")
    df = _load(tmp_path, path="data/d.parquet", text_column="body", label_column="y", labels=[0, 1])
    assert df["label"].tolist() == ["0", "1"]


def test_missing_file_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found\. Fix: run `make data`"):
        _load(tmp_path)


def test_missing_column_lists_what_is_there(tmp_path: Path) -> None:
    _write(tmp_path, "tweet,label\nhello,positive\n")
    with pytest.raises(DataError) as err:
        _load(tmp_path)
    assert "missing column(s) ['text']" in str(err.value)
    assert "['tweet', 'label']" in str(err.value)
    assert "data.text_column" in str(err.value)


def test_empty_and_blank_text_name_the_rows(tmp_path: Path) -> None:
    _write(tmp_path, "text,label\nok,positive\n,negative\nfine,neutral\n")
    with pytest.raises(DataError, match=r"empty or not a string in row 2\b"):
        _load(tmp_path)
    _write(tmp_path, 'text,label\nok,positive\n"   ",negative\n"\t",neutral\n')
    with pytest.raises(DataError, match=r"blank \(only whitespace\) in rows 2, 3"):
        _load(tmp_path)


def test_non_string_text_in_parquet(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    pd.DataFrame({"text": [17, 3], "label": ["positive", "negative"]}).to_parquet(
        tmp_path / "data" / "d.parquet"
    )
    with pytest.raises(DataError, match="not a string in rows 1, 2"):
        _load(tmp_path, path="data/d.parquet")


def test_unknown_label_names_value_rows_and_label_set(tmp_path: Path) -> None:
    _write(tmp_path, "text,label\na,positive\nb,mixed\nc,mixed\nd,Positive\n")
    with pytest.raises(DataError) as err:
        _load(tmp_path)
    msg = str(err.value)
    assert "'mixed' (2 rows)" in msg and "'Positive' (1 rows)" in msg
    assert "rows 2, 3, 4" in msg
    assert "add the label to data.labels" in msg


def test_missing_label(tmp_path: Path) -> None:
    _write(tmp_path, "text,label\na,positive\nb,\n")
    with pytest.raises(DataError, match="'label' is empty in row 2"):
        _load(tmp_path)


def test_malformed_csv_row(tmp_path: Path) -> None:
    _write(tmp_path, "text,label\na,positive\nb,negative,extra,fields\n")
    with pytest.raises(DataError, match=r"malformed CSV.*line 3, saw 4\. Fix: quote fields"):
        _load(tmp_path)


def test_wrong_encoding_suggests_data_encoding(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "toy.csv").write_bytes("text,label\ncaf\xe9,positive\n".encode("latin-1"))
    with pytest.raises(DataError, match="not valid utf-8.*data.encoding"):
        _load(tmp_path)
    assert _load(tmp_path, encoding="latin-1")["text"].tolist() == ["café"]


def test_header_only_file(tmp_path: Path) -> None:
    _write(tmp_path, "text,label\n")
    with pytest.raises(DataError, match="no rows"):
        _load(tmp_path)


def test_long_error_lists_are_truncated(tmp_path: Path) -> None:
    rows = "".join(f"t{i},bogus\n" for i in range(25))
    _write(tmp_path, "text,label\n" + rows)
    with pytest.raises(DataError, match="rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 15 more"):
        _load(tmp_path)
