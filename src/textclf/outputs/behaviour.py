"""``reports/behaviour/metrics.json``: pass rate and failing cases of every behaviour test."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from textclf.outputs.base import Report


class TestResult(Report):
    """One test on one model: its cases, how many passed, and the worst failures."""

    type: str
    description: str = ""
    applicable: bool
    reason: str | None = None  # why it did not run (a label the model lacks, no case)
    cases: int
    passed: int
    pass_rate: float | None = None
    min_pass_rate: float
    ok: bool | None = None  # None: not applicable
    failures: list[dict[str, Any]] = Field(default_factory=list)


class Totals(Report):
    """How many tests ran, and which did not run or fell below their threshold."""

    tests: int
    applicable: int
    cases: int
    not_applicable: list[str]
    below_threshold: list[str]


class BehaviourReport(Report):
    """The suite's results on the exported graph, and which suite and model they are of."""

    STAGE: ClassVar[str] = "behaviour"

    suite: str
    suite_sha256: str
    model: dict[str, str]
    tests: dict[str, TestResult]
    summary: Totals
