"""Read the raw data file and validate it; every error names the file, the rows and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from textclf.config.data import DataParams
from textclf.data.prepared import LABEL, ROW, TEXT
from textclf.errors import DataError

_MAX_LISTED = 10


def _rows(index: Sequence[int] | pd.Index) -> str:
    """Format 1-based data-row numbers, at most ten, with a count of the rest."""
    rows = [int(i) for i in index]
    shown = ", ".join(str(r) for r in rows[:_MAX_LISTED])
    more = f" and {len(rows) - _MAX_LISTED} more" if len(rows) > _MAX_LISTED else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def read_table(path: Path, fmt: str = "auto", encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV or Parquet file, turning parser failures into :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"data file {path} not found. Fix: run `make data` (bootstrap the default corpus or "
            "`dvc pull`), or point data.path in params.yaml at your file."
        )
    kind = (
        fmt
        if fmt != "auto"
        else ("parquet" if path.suffix.lower() in {".parquet", ".pq"} else "csv")
    )
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(
            path, encoding=encoding, dtype=object, keep_default_na=False, na_values=[""]
        )
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not valid {encoding} text ({err.reason} at byte {err.start}). "
            "Fix: set data.encoding in params.yaml to the file's encoding (e.g. latin-1)."
        ) from None
    except pd.errors.ParserError as err:
        raise DataError(
            f"{path}: malformed CSV: {str(err).strip()}. Fix: quote fields that contain "
            "commas, quotes or newlines, or remove the broken row."
        ) from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read as {kind}: {err}") from None


def _canonical_label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def validate(df: pd.DataFrame, params: DataParams, source: str) -> pd.DataFrame:
    """Check columns, texts and labels; return ``text``, ``label`` and the 1-based ``row``."""
    missing = [c for c in (params.text_column, params.label_column) if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; the file has {list(df.columns)}. "
            "Fix: set data.text_column / data.label_column in params.yaml to the right names."
        )
    if df.empty:
        raise DataError(f"{source}: the file has a header but no rows.")
    out = pd.DataFrame({TEXT: df[params.text_column], LABEL: df[params.label_column]})
    out[ROW] = range(1, len(out) + 1)
    out = out.reset_index(drop=True)

    not_str = out[~out[TEXT].map(lambda v: isinstance(v, str))]
    if len(not_str):
        raise DataError(
            f"{source}: column '{params.text_column}' is empty or not a string in "
            f"{_rows(not_str[ROW])}. Fix: fill in or remove those rows."
        )
    blank = out[out[TEXT].str.strip() == ""]
    if len(blank):
        raise DataError(
            f"{source}: column '{params.text_column}' is blank (only whitespace) in "
            f"{_rows(blank[ROW])}. Fix: fill in or remove those rows."
        )
    no_label = out[out[LABEL].isna()]
    if len(no_label):
        raise DataError(
            f"{source}: column '{params.label_column}' is empty in {_rows(no_label[ROW])}. "
            "Fix: label or remove those rows."
        )
    out[LABEL] = out[LABEL].map(_canonical_label)
    unknown = out[~out[LABEL].isin(params.labels)]
    if len(unknown):
        values = unknown[LABEL].value_counts()
        listed = ", ".join(f"'{v}' ({n} rows)" for v, n in values.head(_MAX_LISTED).items())
        raise DataError(
            f"{source}: unknown label(s) {listed} in column '{params.label_column}', first at "
            f"{_rows(unknown[ROW])}; params.yaml data.labels is {params.labels}. Fix: add the "
            "label to data.labels, or relabel/remove those rows."
        )
    return out


def load_dataset(root: Path, params: DataParams) -> pd.DataFrame:
    """Read and validate the raw data named by ``params.path`` (relative to ``root``)."""
    path = Path(root) / params.path
    return validate(read_table(path, params.format, params.encoding), params, str(params.path))


#: Train-only files (``data.train_only_paths``) are UTF-8 whatever ``data.encoding`` says: they
#: hold production texts (``textclf retrain propose`` writes them), which Latin-1 cannot spell.
TRAIN_ONLY_ENCODING = "utf-8"


def load_train_only(root: Path, params: DataParams) -> pd.DataFrame:
    """The validated rows of every ``params.train_only_paths`` file, in order, as one frame
    (``row`` is 1-based within each file; ``source`` names the file)."""
    frames = []
    for rel in params.train_only_paths:
        table = read_table(Path(root) / rel, "auto", TRAIN_ONLY_ENCODING)
        frames.append(validate(table, params, rel).assign(source=rel))
    if not frames:
        return pd.DataFrame({TEXT: [], LABEL: [], ROW: [], "source": []})
    return pd.concat(frames, ignore_index=True)
