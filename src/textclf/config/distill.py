"""``distill``: an optional smaller student, trained on the teacher's soft and the gold labels."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from textclf.config.base import Section


class DistillParams(Section):
    """``distill``: the student, its training, and whether it is the model that ships."""

    enabled: bool = Field(
        False,
        description="train a student (true/false); false makes the distill stage a cached no-op",
    )
    ship: bool = Field(
        False,
        description="evaluate, export and serve the student instead of the teacher (true/false; "
        "needs enabled: true)",
    )
    layer_share: float = Field(
        0.34,
        gt=0.0,
        lt=1.0,
        description="share of the teacher's encoder layers the student keeps, in (0, 1); "
        "rounded, at least one (0.34 of MiniLM's 6 = 2)",
    )
    layer_choice: Literal["spread", "first"] = Field(
        "spread",
        description="which teacher layers start the student: spread (evenly spaced, first and "
        "last kept) or first",
    )
    temperature: float = Field(
        2.0, gt=0.0, le=20.0, description="softmax temperature of the soft labels, e.g. 2 (0..20]"
    )
    alpha: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="weight of the soft-label loss (KL to the teacher) against the gold labels' "
        "cross-entropy, in [0, 1]",
    )
    seed: int = Field(42, description="random seed for batch order and the student's dropout")
    epochs: int = Field(3, ge=1, le=100, description="student training epochs (1..100)")
    max_steps: int = Field(
        -1, ge=-1, description="stop after this many optimizer steps; -1 for no limit"
    )
    batch_size: int = Field(32, ge=1, le=4096, description="student training batch size")
    learning_rate: float = Field(
        1e-4, gt=0.0, le=1.0, description="peak AdamW learning rate of the student (positive)"
    )

    @model_validator(mode="after")
    def _ship_needs_a_student(self) -> Self:
        if self.ship and not self.enabled:
            raise ValueError(
                "distill.ship is true but distill.enabled is false: there is no student to "
                "ship. Fix: set distill.enabled: true, or distill.ship: false"
            )
        return self
