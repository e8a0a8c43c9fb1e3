"""``behaviour``: how the behaviour stage runs the suite (the tests are in ``behaviour.yaml``)."""

from __future__ import annotations

from pydantic import Field

from textclf.config.base import OnnxVariant, Section

#: The suite, at the repository root: a dependency of the stage, and what the review reads from
#: the base branch (a pull request cannot pass by dropping the cases it fails).
SUITE_FILE = "behaviour.yaml"


class BehaviourParams(Section):
    """``behaviour``: the graph the suite runs on and how many failures each test lists."""

    variant: OnnxVariant = Field(
        "int8", description="ONNX graph tested: the one serving runs ('int8' on CPU images)"
    )
    batch_size: int = Field(64, ge=1, le=4096, description="texts per ONNX Runtime call")
    threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0 keeps its default")
    max_failures: int = Field(
        5, ge=0, le=100, description="failing cases listed per test (the worst first)"
    )
