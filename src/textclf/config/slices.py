"""``slices``: metrics per data slice and the four-fifths disparity check."""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Literal

from pydantic import Field, field_validator

from textclf.config.base import Section

SliceFamily = Literal[
    "length", "has_url", "has_mention", "has_hashtag", "has_emoji", "has_negation"
]
DEFAULT_NEGATION_WORDS = [
    "not",
    "no",
    "never",
    "none",
    "nobody",
    "nothing",
    "nowhere",
    "neither",
    "nor",
    "cannot",
    "n't",
    "dont",
    "cant",
    "wont",
    "didnt",
    "doesnt",
    "isnt",
    "wasnt",
    "aint",
]


class SlicesParams(Section):
    """``slices``: metrics per data slice and the four-fifths disparity check."""

    families: list[SliceFamily] = Field(
        ["length", "has_url", "has_mention", "has_hashtag", "has_emoji", "has_negation"],
        description="slice families to score, any of: length, has_url, has_mention, "
        "has_hashtag, has_emoji, has_negation",
    )
    length_unit: Literal["words", "chars"] = Field(
        "words", description="unit of the length buckets: 'words' or 'chars'"
    )
    length_edges: list[int] = Field(
        [10, 20],
        description="increasing positive bucket upper bounds, e.g. [10, 20] gives <=10, "
        "11-20 and >20",
    )
    negation_words: list[str] = Field(
        DEFAULT_NEGATION_WORDS,
        description="words that put a text in the has_negation slice (case-insensitive); "
        "\"n't\" matches any word ending in n't",
    )
    min_support: int = Field(
        50, ge=1, description="slices with fewer rows are listed but not scored (>= 1)"
    )
    disparity_threshold: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="flag a slice whose prediction rate for a class is below this share of the "
        "highest rate in its family (the four-fifths rule: 0.8), in (0, 1]",
    )

    @field_validator("length_edges")
    @classmethod
    def _edges_increasing(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("give at least one bucket edge")
        if any(v <= 0 for v in value) or any(b <= a for a, b in pairwise(value)):
            raise ValueError("edges must be positive and strictly increasing")
        return value

    @field_validator("negation_words", mode="before")
    @classmethod
    def _no_yaml_booleans(cls, value: Any) -> Any:
        if isinstance(value, list) and any(isinstance(w, bool) for w in value):
            raise ValueError('true/false are YAML booleans, not words: quote them, e.g. "false"')
        return value

    @field_validator("negation_words")
    @classmethod
    def _words_not_blank(cls, value: list[str]) -> list[str]:
        if any(not w.strip() for w in value):
            raise ValueError("negation words must be non-empty strings")
        return [w.strip().lower() for w in value]
