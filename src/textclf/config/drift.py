"""``drift``: Evidently drift between the reference sample and current data or traffic."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from textclf.config.base import OnnxVariant, Section

NumDriftMethod = Literal[
    "ks",
    "wasserstein",
    "psi",
    "jensenshannon",
    "kl_div",
    "hellinger",
    "anderson",
    "cramer_von_mises",
    "mannw",
    "ed",
    "es",
    "t_test",
    "empirical_mmd",
]
CatDriftMethod = Literal[
    "chisquare", "z", "jensenshannon", "psi", "kl_div", "hellinger", "TVD", "g_test", "fisher_exact"
]


class DriftParams(Section):
    """``drift``: Evidently drift between the reference sample and current data or traffic."""

    variant: OnnxVariant = Field(
        "int8", description="ONNX graph that predicts on both sides; use the one serving runs"
    )
    current: Literal["test", "val"] = Field(
        "test", description="split compared with the reference sample: 'test' or 'val'"
    )
    batch_size: int = Field(64, ge=1, le=4096, description="texts per ONNX Runtime call")
    threads: int = Field(
        0, ge=0, description="ONNX Runtime intra-op threads; 0 keeps its default (one per core)"
    )
    drift_share: float = Field(
        0.3,
        gt=0.0,
        le=1.0,
        description="drift is detected when at least this share of columns drifted, in (0, 1]",
    )
    critical_columns: list[str] = Field(
        ["prediction", "confidence"],
        description="columns whose drift alone means drift, e.g. [prediction, confidence]; "
        "[] to rely on drift_share only",
    )
    num_method: NumDriftMethod | None = Field(
        None,
        description="Evidently test for numeric columns (e.g. ks, wasserstein, psi), or "
        "null to let Evidently pick by sample size",
    )
    cat_method: CatDriftMethod | None = Field(
        None,
        description="Evidently test for categorical columns (e.g. chisquare, z, "
        "jensenshannon, psi), or null to let Evidently pick by sample size",
    )
    num_threshold: float | None = Field(
        None,
        gt=0.0,
        description="threshold for num_method (a p-value or a distance), or null "
        "for the method's default",
    )
    cat_threshold: float | None = Field(
        None,
        gt=0.0,
        description="threshold for cat_method (a p-value or a distance), or null "
        "for the method's default",
    )
    text_content: bool = Field(
        False,
        description="also test the raw text with Evidently's domain classifier "
        "(an embedding-free content-drift proxy; slower) (true/false)",
    )
    min_rows: int = Field(
        100,
        ge=10,
        description="drift-check: fewer valid rows in the window is the verdict "
        "insufficient-data, exit 0 (>= 10)",
    )
    window_hours: int = Field(
        168,
        ge=1,
        description="drift-check: only traffic recorded in the last this many hours counts, "
        "unless --since is given, e.g. 168 for a week (>= 1)",
    )
    max_rows: int = Field(
        50000,
        ge=10,
        description="drift-check: at most this many rows of the window go to Evidently, a "
        "seeded uniform sample; every line is still counted (bounds the job's memory)",
    )
    max_invalid_share: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="drift-check: above this share of invalid lines (torn, not JSON, bad "
        "fields) the verdict is degraded, exit 3, in [0, 1]",
    )
    seed: int = Field(42, description="random seed of drift-check's row sample (an integer)")

    @model_validator(mode="after")
    def _sample_holds_min_rows(self) -> DriftParams:
        if self.max_rows < self.min_rows:
            raise ValueError(
                f"max_rows = {self.max_rows} is below min_rows = {self.min_rows}: the sample "
                "could never hold enough rows; raise max_rows or lower min_rows"
            )
        return self
