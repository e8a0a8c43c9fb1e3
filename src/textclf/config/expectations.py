"""``data.expectations.yaml``: what the raw data must look like before ``prepare`` splits it.

The file sits next to ``data.dvc`` (outside ``data/``, which is one DVC output), CODEOWNERS
guards it, and the review judges a pull request's data with the BASE branch's copy, as it does
with ``gate.yaml``. Each key is null (or absent) when it is not checked.
:meth:`DataExpectations.rules` turns the file into one bound per measured figure; ``prepare``
checks them on the data (:mod:`textclf.data.expectations`), the review on the figures
``prepare`` recorded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from textclf.config.base import Section, read_file, validate
from textclf.errors import ConfigError

EXPECTATIONS_FILE = "data.expectations.yaml"  # at the repository root, next to data.dvc
#: The text length percentiles ``prepare`` measures (and the file may bound), in percent.
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)
#: Where a change to the file is reviewed, named in every fix.
CHANGE_FIX = (
    f"fix the data, or, if the change is intended, change {EXPECTATIONS_FILE} in the same PR "
    "(CODEOWNERS review)"
)
_EPS = 1e-12
_OPS: tuple[Literal["min", "max"], ...] = ("min", "max")
#: The rate keys: the figure each bounds (from above) and the figure in words.
_RATES = {
    "max_duplicate_rate": (
        "duplicate_rate",
        "share of raw rows that repeat an earlier row's text",
    ),
    "max_conflicting_label_rate": (
        "conflicting_label_rate",
        "share of raw rows whose text also appears with another label",
    ),
    "max_only_urls_mentions_share": (
        "only_urls_mentions_share",
        "share of de-duplicated texts that are only URLs and @mentions",
    ),
}


def _none_is_empty(value: Any) -> Any:
    """``key: null`` for a group of bounds means what an absent key means: nothing checked."""
    return {} if value is None else value


class Range(Section):
    """A lower and an upper bound; a null bound is not checked."""

    min: float | None = Field(None, description="lower bound, or null to not check it")
    max: float | None = Field(None, description="upper bound, or null to not check it")

    @model_validator(mode="after")
    def _min_below_max(self) -> Range:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}; swap them")
        return self


class ShareRange(Range):
    """Bounds on a share of rows, each in [0, 1]."""

    min: float | None = Field(
        None, ge=0.0, le=1.0, description="lowest share, in [0, 1], or null to not check it"
    )
    max: float | None = Field(
        None, ge=0.0, le=1.0, description="highest share, in [0, 1], or null to not check it"
    )


class CharRange(Range):
    """Bounds on a text length percentile, in characters."""

    min: float | None = Field(
        None, ge=0.0, description="fewest characters (at least 0), or null to not check it"
    )
    max: float | None = Field(
        None, ge=0.0, description="most characters (at least 0), or null to not check it"
    )


class ClassShare(ShareRange):
    """``class_share``: each label's share of the de-duplicated rows."""

    per_label: dict[str, ShareRange] = Field(
        default_factory=dict,
        description="bounds for one label that replace min / max for it (a key given, null "
        "included, replaces that bound; a key left out keeps the one above), e.g. "
        "{positive: {min: 0.05}}",
    )

    @field_validator("per_label", mode="before")
    @classmethod
    def _per_label_null(cls, value: Any) -> Any:
        return _none_is_empty(value)


class TextChars(Section):
    """``text_chars``: percentiles of text length in characters, of the de-duplicated rows."""

    p1: CharRange = Field(default_factory=CharRange, description="1st percentile: {min, max}")
    p5: CharRange = Field(default_factory=CharRange, description="5th percentile: {min, max}")
    p10: CharRange = Field(default_factory=CharRange, description="10th percentile: {min, max}")
    p25: CharRange = Field(default_factory=CharRange, description="25th percentile: {min, max}")
    p50: CharRange = Field(default_factory=CharRange, description="the median: {min, max}")
    p75: CharRange = Field(default_factory=CharRange, description="75th percentile: {min, max}")
    p90: CharRange = Field(default_factory=CharRange, description="90th percentile: {min, max}")
    p95: CharRange = Field(default_factory=CharRange, description="95th percentile: {min, max}")
    p99: CharRange = Field(default_factory=CharRange, description="99th percentile: {min, max}")

    @field_validator("*", mode="before")
    @classmethod
    def _null_percentile(cls, value: Any) -> Any:
        return _none_is_empty(value)


@dataclass(frozen=True)
class Rule:
    """One bound of the file on one measured figure (for one label, where it is per label)."""

    key: str  # the file's key that sets the bound, e.g. class_share.min, text_chars.p95.max
    measure: str  # the figure: duplicate_rate, class_share, class_rows, text_chars.p95, ...
    label: str | None
    op: Literal["min", "max"]
    bound: float
    what: str  # the figure in words, for messages

    @property
    def name(self) -> str:
        """The key, with the label it applies to: ``class_share.min (positive)``."""
        return f"{self.key} ({self.label})" if self.label is not None else self.key

    def passes(self, value: float | None) -> bool:
        """Whether a measured value meets the bound (an unmeasured one does not)."""
        if value is None or math.isnan(value):
            return False
        return value >= self.bound - _EPS if self.op == "min" else value <= self.bound + _EPS

    def bound_text(self) -> str:
        """``at least 0.1`` / ``at most 0.8``."""
        return f"{'at least' if self.op == 'min' else 'at most'} {self.bound:g}"


class DataExpectations(Section):
    """``data.expectations.yaml``: bounds on the raw data that ``prepare`` checks before it splits.

    Duplicate and conflicting-label rates are measured on the validated raw rows; class shares,
    rows per class, text lengths and URL/mention-only texts on the de-duplicated rows.
    """

    class_share: ClassShare = Field(
        default_factory=ClassShare,
        description="each label's share of the de-duplicated rows: {min, max, per_label}",
    )
    min_rows_per_class: int | None = Field(
        None,
        ge=1,
        description="fewest de-duplicated rows of each label (a positive integer), or null to "
        "not check it",
    )
    text_chars: TextChars = Field(
        default_factory=TextChars,
        description="text length percentiles in characters (de-duplicated rows): "
        f"{', '.join(f'p{q}' for q in PERCENTILES)}, each {{min, max}}",
    )
    max_duplicate_rate: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="highest share of raw rows that repeat an earlier row's text, in [0, 1], "
        "or null to not check it",
    )
    max_conflicting_label_rate: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="highest share of raw rows whose text also appears with another label, in "
        "[0, 1], or null to not check it",
    )
    max_only_urls_mentions_share: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="highest share of de-duplicated texts that are only URLs and @mentions "
        "(with spaces and punctuation), in [0, 1], or null to not check it",
    )

    @field_validator("class_share", "text_chars", mode="before")
    @classmethod
    def _null_group(cls, value: Any) -> Any:
        return _none_is_empty(value)

    def rules(self, labels: Sequence[str]) -> list[Rule]:
        """Every bound the file sets, in file order; per-label ones for ``labels`` and for any
        label ``class_share.per_label`` names (one the data lacks cannot be met)."""
        rules: list[Rule] = []
        extra = [lab for lab in self.class_share.per_label if lab not in labels]
        for label in [*labels, *extra]:
            rules += self._share_rules(label)
        if self.min_rows_per_class is not None:
            rules += [
                Rule(
                    "min_rows_per_class",
                    "class_rows",
                    label,
                    "min",
                    float(self.min_rows_per_class),
                    f"the number of de-duplicated rows labelled '{label}'",
                )
                for label in labels
            ]
        for q in PERCENTILES:
            bounds: CharRange = getattr(self.text_chars, f"p{q}")
            what = f"percentile {q} of text length in characters (de-duplicated rows)"
            for op in _OPS:
                bound = getattr(bounds, op)
                if bound is not None:
                    rules.append(
                        Rule(f"text_chars.p{q}.{op}", f"text_chars.p{q}", None, op, bound, what)
                    )
        for key, (measure, what) in _RATES.items():
            bound = getattr(self, key)
            if bound is not None:
                rules.append(Rule(key, measure, None, "max", bound, what))
        return rules

    def _share_rules(self, label: str) -> list[Rule]:
        override = self.class_share.per_label.get(label)
        rules = []
        for op in _OPS:
            if override is not None and op in override.model_fields_set:
                key, bound = f"class_share.per_label.{label}.{op}", getattr(override, op)
            else:
                key, bound = f"class_share.{op}", getattr(self.class_share, op)
            if bound is not None:
                what = f"share of de-duplicated rows labelled '{label}'"
                rules.append(Rule(key, "class_share", label, op, bound, what))
        return rules


def parse_expectations(raw: Any, source: str) -> DataExpectations:
    """Validate a loaded expectations mapping; a :class:`ConfigError` names each bad key."""
    return validate(DataExpectations, {} if raw is None else raw, source, "expectation keys")


def load_expectations(path: Path | str = EXPECTATIONS_FILE) -> DataExpectations:
    """Load and validate the data expectations file (``data.expectations.yaml``)."""
    return parse_expectations(read_file(path, "prepare"), str(path))


def check_labels(expectations: DataExpectations, labels: Sequence[str], source: str) -> None:
    """Fail when ``class_share.per_label`` names a label that ``data.labels`` does not have."""
    unknown = [lab for lab in expectations.class_share.per_label if lab not in labels]
    if unknown:
        raise ConfigError(
            f"{source}: class_share.per_label names {unknown}, not in params.yaml data.labels "
            f"{list(labels)}. Fix: rename the key to one of data.labels, or remove it."
        )
