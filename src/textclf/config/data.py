"""``data`` and ``prepare``: where the labelled data is, what its columns mean, how it splits."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from textclf.config.base import Fraction, Section


class DataParams(Section):
    """``data``: where the labelled data is and what its columns mean."""

    path: str = Field(
        "data/tweets.csv",
        description="the raw data file (CSV or Parquet) inside the DVC-tracked data/ directory",
    )
    format: Literal["auto", "csv", "parquet"] = Field(
        "auto", description="'csv', 'parquet', or 'auto' to decide from the file extension"
    )
    # No default for what only your data can say (the default corpus is Latin-1 with a
    # `sentiment` column; most CSVs are UTF-8 with another): params.yaml must name it.
    encoding: str = Field(description="text encoding of a CSV file, e.g. utf-8 or latin-1")
    text_column: str = Field("text", min_length=1, description="name of the column with the text")
    label_column: str = Field(min_length=1, description="name of the column with the label")
    labels: list[str] = Field(
        description="the label set, at least two distinct labels, e.g. [negative, positive]",
    )
    train_only_paths: list[str] = Field(
        default_factory=list,
        description="extra labelled files inside data/ (UTF-8 CSV or Parquet, the same columns "
        "as data.path) whose rows go to the train split only, so the test split stays pinned; "
        "a text already in data.path is dropped (textclf retrain propose adds these)",
    )

    @field_validator("train_only_paths")
    @classmethod
    def _train_only_inside_data(cls, value: list[str]) -> list[str]:
        for path in value:
            parts = PurePosixPath(path).parts
            if len(parts) < 2 or parts[0] != "data" or ".." in parts:
                raise ValueError(
                    f"{path!r} is not a file inside data/ (tracked by data.dvc); write it as "
                    "data/<file>"
                )
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ValueError(f"train_only_paths must be distinct; repeated: {dupes}")
        return value

    @model_validator(mode="after")
    def _train_only_is_not_the_corpus(self) -> DataParams:
        if self.path in self.train_only_paths:
            raise ValueError(
                f"data.path {self.path!r} is also in train_only_paths; list only the extra files"
            )
        return self

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for v in value
            ]
        return value

    @field_validator("labels")
    @classmethod
    def _labels_distinct(cls, value: list[str]) -> list[str]:
        if len(value) < 2:
            raise ValueError("at least two labels are needed")
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ValueError(f"labels must be distinct; repeated: {dupes}")
        if any(not v.strip() for v in value):
            raise ValueError("labels must be non-empty strings")
        return value


class PrepareParams(Section):
    """``prepare``: validation, de-duplication and the stratified split."""

    seed: int = Field(42, description="random seed for the split and the subsamples (an integer)")
    test_size: Fraction = Field(0.1, description="share of rows in the test split, in (0, 1)")
    val_size: Fraction = Field(0.1, description="share of rows in the validation split, in (0, 1)")
    max_train_rows: int | None = Field(
        20_000, gt=0, description="cap on training rows (stratified subsample), or null for all"
    )
    max_val_rows: int | None = Field(
        1500, gt=0, description="cap on validation rows (stratified subsample), or null for all"
    )
    reference_size: int = Field(
        2000, gt=0, description="rows of the training split kept as the drift reference sample"
    )
    conflicting_labels: Literal["drop", "first"] = Field(
        "drop",
        description="duplicated texts with different labels: 'drop' them all or keep the 'first'",
    )

    @model_validator(mode="after")
    def _sizes_leave_training_rows(self) -> PrepareParams:
        if self.test_size + self.val_size >= 0.9:
            raise ValueError(
                f"test_size + val_size = {self.test_size + self.val_size:.2f} leaves under 10% "
                "of rows for training; lower test_size or val_size"
            )
        return self
