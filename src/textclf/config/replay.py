"""``replay``: ``textclf replay``, the workspace's model over a traffic snapshot (no stage)."""

from __future__ import annotations

from pydantic import Field

from textclf.config.base import OnnxVariant, Section


class ReplayParams(Section):
    """``replay``: how ``textclf replay`` runs the exported model over recorded traffic.

    Not a pipeline stage (DVC has no optional dependencies): ``make report`` runs it when a
    snapshot is checked out in ``traffic/``.
    """

    variant: OnnxVariant = Field(
        "int8", description="ONNX graph replayed: the one serving runs ('int8' on CPU images)"
    )
    batch_size: int = Field(32, ge=1, le=4096, description="texts per ONNX Runtime call")
    threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0 keeps its default")
    examples: int = Field(
        5,
        ge=0,
        le=100,
        description="most confident changed answers listed with their text (0 lists none: "
        "the PR comment then shows no production text)",
    )
    example_chars: int = Field(
        160, ge=10, le=2000, description="a listed text is cut to this many characters"
    )
    bootstrap_resamples: int = Field(
        1000,
        ge=100,
        le=100_000,
        description="paired bootstrap resamples for the confidence intervals of accuracy and "
        "macro-F1 on the labelled requests",
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1.0, description="confidence level of those intervals"
    )
    latency_samples: int = Field(
        200,
        ge=0,
        le=100_000,
        description="real texts timed one at a time (batch 1) for the latency figures; 0 skips",
    )
    seed: int = Field(42, description="seed of the bootstrap and of the timed sample")
