"""Read the raw data file and validate it; every error names the file, the rows and the fix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

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


def _is_text(values: pd.Series) -> pd.Series:
    return values.map(lambda v: isinstance(v, str))


def _not_blank(values: pd.Series) -> pd.Series:
    return values.map(lambda v: not isinstance(v, str) or v.strip() != "")


def _row_schema(params: DataParams) -> pa.DataFrameSchema:
    """The row checks, one pandera check each, named as :data:`_ROW_ERRORS` names them.

    Nulls are let through the columns and caught by the checks that name them (``ignore_na``
    off), so that an empty cell gets this file's message, not pandera's.
    """
    return pa.DataFrameSchema(
        {
            TEXT: pa.Column(
                nullable=True,
                checks=[
                    pa.Check(_is_text, name="text_is_string", ignore_na=False),
                    pa.Check(_not_blank, name="text_not_blank", ignore_na=False),
                ],
            ),
            LABEL: pa.Column(
                nullable=True,
                checks=[
                    pa.Check(lambda v: v.notna(), name="label_present", ignore_na=False),
                    pa.Check(lambda v: v.isin(params.labels), name="label_known"),
                ],
            ),
        },
        name="data rows",
    )


def _unknown_labels(rows: pd.DataFrame, params: DataParams) -> str:
    values = rows[LABEL].value_counts()
    listed = ", ".join(f"'{v}' ({n} rows)" for v, n in values.head(_MAX_LISTED).items())
    return (
        f"unknown label(s) {listed} in column '{params.label_column}', first at "
        f"{_rows(rows[ROW])}; params.yaml data.labels is {params.labels}. Fix: add the "
        "label to data.labels, or relabel/remove those rows."
    )


#: Each row check's message (after ``<file>: ``), given the failing rows, in the order listed.
_ROW_ERRORS: dict[str, Callable[[pd.DataFrame, DataParams], str]] = {
    "text_is_string": lambda rows, p: (
        f"column '{p.text_column}' is empty or not a string in {_rows(rows[ROW])}. "
        "Fix: fill in or remove those rows."
    ),
    "text_not_blank": lambda rows, p: (
        f"column '{p.text_column}' is blank (only whitespace) in {_rows(rows[ROW])}. "
        "Fix: fill in or remove those rows."
    ),
    "label_present": lambda rows, p: (
        f"column '{p.label_column}' is empty in {_rows(rows[ROW])}. "
        "Fix: label or remove those rows."
    ),
    "label_known": _unknown_labels,
}


def _row_errors(cases: pd.DataFrame, out: pd.DataFrame, params: DataParams, source: str) -> str:
    """One line per failed row check (pandera's failure cases), in :data:`_ROW_ERRORS` order."""
    lines = []
    for name in [*_ROW_ERRORS, *sorted(set(map(str, cases["check"])) - set(_ROW_ERRORS))]:
        index = cases.loc[cases["check"].astype(str) == name, "index"].dropna()
        if index.empty:
            continue
        rows = out.loc[sorted({int(i) for i in index})]
        known = _ROW_ERRORS.get(name)
        lines.append(
            f"{source}: {known(rows, params)}"
            if known
            else f"{source}: check {name} failed in {_rows(rows[ROW])}."
        )
    return "\n".join(lines)


def validate(df: pd.DataFrame, params: DataParams, source: str) -> pd.DataFrame:
    """Check columns, texts and labels; return ``text``, ``label`` and the 1-based ``row``.

    Every failing row check is reported at once, one line each. The column and empty-file
    checks stay here: pandera would name its own missing column, not the params key to fix.
    """
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
    present = out[LABEL].notna()
    out[LABEL] = out[LABEL].where(~present, out[LABEL].map(_canonical_label))
    try:
        _row_schema(params).validate(out, lazy=True)
    except SchemaErrors as err:
        raise DataError(_row_errors(err.failure_cases, out, params, source)) from None
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
