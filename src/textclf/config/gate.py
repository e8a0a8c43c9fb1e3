"""``gate.yaml``: the promotion gate a pull request must pass."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from textclf.config.base import Section, read_file, validate

GATE_FILE = "gate.yaml"  # at the repository root; the review reads the base branch's copy


class GateParams(Section):
    """``gate.yaml``: the promotion gate a pull request must pass (``textclf gate``, the report).

    The review judges a pull request with the base branch's copy of this file, so a pull request
    cannot loosen its own gate.
    """

    max_macro_f1_drop: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="largest allowed drop of test macro-F1 below the base "
        "branch's model, in [0, 1], e.g. 0.01 (0 = no drop allowed)",
    )
    min_macro_f1_over_baseline: float = Field(
        0.02,
        ge=-1.0,
        le=1.0,
        description="test macro-F1 must exceed the TF-IDF baseline's by at "
        "least this margin, in [-1, 1], e.g. 0.02",
    )
    require_export_parity: bool = Field(
        True, description="fail unless the export stage's parity gates passed (true/false)"
    )
    latency_batch_size: int = Field(
        1,
        ge=1,
        description="batch size whose int8 latency is checked; one of "
        "export.latency_batch_sizes, e.g. 1",
    )
    max_int8_p95_ms: float | None = Field(
        50.0,
        gt=0.0,
        description="budget for the int8 ONNX graph's p95 CPU latency at "
        "latency_batch_size, in ms (positive), or null to not check it",
    )
    max_int8_size_mb: float | None = Field(
        100.0,
        gt=0.0,
        description="budget for the int8 ONNX graph's size in MB (positive), or "
        "null to not check it",
    )
    fail_on_disparity: Literal["new", "any", "never"] = Field(
        "new",
        description="slice disparities flagged by the four-fifths rule: 'new' fails on a flag "
        "the base branch does not have (a PR may not make them worse; with no base slice "
        "metrics they are a warning), 'any' fails on every flag, 'never' only shows them",
    )
    fail_on_drift: bool = Field(
        False,
        description="fail when the drift stage detected drift; false shows drift as a "
        "warning only (true/false)",
    )
    max_replay_changed_share: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="most recorded production answers the PR's model may change (textclf "
        "replay on the base's traffic snapshot), in [0, 1], or null to not check it; when set, "
        "a review without a replay fails",
    )
    min_live_accuracy_delta: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="the PR's accuracy on the requests users labelled (POST /feedback) minus "
        "production's, at least this, in [-1, 1] (e.g. -0.01), or null to not check it; when "
        "set, a review without labelled requests to compare on fails",
    )


def load_gate(path: Path | str = GATE_FILE) -> GateParams:
    """Load and validate the promotion gate file (``gate.yaml``)."""
    return validate(GateParams, read_file(path, "the promotion gate"), str(path), "gate keys")
