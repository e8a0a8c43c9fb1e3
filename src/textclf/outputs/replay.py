"""``reports/replay/summary.json``: the workspace's model over recorded production requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field

from textclf.errors import ArtifactError
from textclf.outputs.base import Report

REPLAY_FIX = "run `textclf replay --traffic traffic` (after `dvc pull traffic.dvc`)"


class Interval(Report):
    """A confidence interval."""

    low: float
    high: float


class ModelScores(Report):
    """One model's answers on the labelled requests."""

    accuracy: float
    macro_f1: float
    accuracy_ci: Interval
    macro_f1_ci: Interval
    confusion: dict[str, dict[str, int]]  # true label -> answered label -> requests


class LabelledScores(Report):
    """Production (and this model) on the requests that feedback labelled."""

    requests: int
    method: str
    models: dict[str, ModelScores]  # "production", and "candidate" when replayed
    accuracy_delta: float  # candidate - production (0 when only production is scored)
    accuracy_delta_ci: Interval
    macro_f1_delta: float
    macro_f1_delta_ci: Interval


class SliceChange(Report):
    """Changed answers in one slice."""

    requests: int
    changed: int
    changed_share: float | None


class ReplayExample(Report):
    """A changed answer, among the most confident ones."""

    text: str
    production: str
    production_confidence: float
    new: str
    new_confidence: float
    truth: str | None = None


class Latency(Report):
    """This model on the recorded texts, one at a time."""

    batch_size: int
    texts: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    texts_per_s: float


class ReplaySummary(Report):
    """What the PR's model would have answered to recorded production requests."""

    STAGE: ClassVar[str] = "replay"

    requests: int
    replayed: int  # requests with their text
    changed: int
    changed_share: float | None
    changed_matrix: dict[str, dict[str, int]]  # production label -> new label -> requests
    slices: dict[str, dict[str, SliceChange]] = Field(default_factory=dict)
    examples: list[ReplayExample] = Field(default_factory=list)
    throughput_texts_per_s: float | None = None
    latency: Latency | None = None
    labelled: int = 0
    production: LabelledScores | None = None  # production on every labelled request
    feedback: LabelledScores | None = None  # production vs candidate on labelled + replayed
    model: dict[str, Any] = Field(default_factory=dict)
    production_models: dict[str, int] = Field(default_factory=dict)
    snapshot: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    @classmethod
    def parse(cls, raw: Any, source: str) -> Self:
        """As :meth:`Report.parse`, with replay's fix (it is not a pipeline stage)."""
        try:
            return super().parse(raw, source)
        except ArtifactError as err:
            raise ArtifactError(str(err).split(" Fix:")[0] + f" Fix: {REPLAY_FIX}.") from None

    @classmethod
    def read(cls, path: Path) -> Self:
        """The summary at ``path``; missing or invalid: an error with replay's fix."""
        if not path.is_file():
            raise ArtifactError(f"{path} is missing. Fix: {REPLAY_FIX}.")
        return super().read(path)
