"""``monitor``: ``textclf monitor``, the scheduled verdict on production traffic (no stage)."""

from __future__ import annotations

from pydantic import Field

from textclf.config.base import Section


class MonitorParams(Section):
    """``monitor``: when recorded traffic and feedback say the served model needs attention.

    Read by ``textclf monitor`` and ``textclf retrain propose`` (the scheduled monitor workflow),
    outside the DVC pipeline.
    """

    min_feedback: int = Field(
        100,
        ge=1,
        description="labelled requests (POST /feedback) a model version needs before its live "
        "accuracy is judged; fewer: not judged (insufficient data)",
    )
    max_accuracy_drop: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="degraded when a model version's live accuracy is more than this below the "
        "test accuracy of the checkout's model (reports/evaluate/metrics.json), in [0, 1]",
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1.0, description="level of the exact (Clopper-Pearson) interval shown"
    )
    retrain_min_labels: int = Field(
        500,
        ge=1,
        description="new labelled production rows (with text, not already in the data) needed "
        "before `textclf retrain propose` opens a retrain pull request; fewer: nothing proposed",
    )
