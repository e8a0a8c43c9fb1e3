"""``reports/explain/summary.json``: SHAP token rankings per class and explained examples."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from textclf.outputs.base import Report


class TokenScore(Report):
    """A token's mean SHAP value towards a class over the sample."""

    token: str
    mean_shap: float
    mean_abs_shap: float | None = None
    count: int | None = None


class ClassRanking(Report):
    """The tokens that push most towards one class."""

    top_positive: list[TokenScore]
    top_tokens: list[TokenScore] = Field(default_factory=list)


class ExampleToken(Report):
    """A token of one explained text and its SHAP value."""

    token: str
    shap: float


class Example(Report):
    """One explained test text."""

    text: str
    label: str
    prediction: str
    probability: float
    top_tokens: list[ExampleToken] = Field(default_factory=list)


class ExplainSummary(Report):
    """The sample, the rankings and the examples."""

    STAGE: ClassVar[str] = "explain"

    sample_size: int
    classes: dict[str, ClassRanking]
    examples: dict[str, list[Example]] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)  # the ONNX variant and version explained
