"""``evaluate``: test-split metrics, calibration and the TF-IDF baseline."""

from __future__ import annotations

from pydantic import Field

from textclf.config.base import Section


class BaselineParams(Section):
    """The TF-IDF + logistic-regression baseline trained on the same rows."""

    max_features: int = Field(50_000, ge=10, description="TF-IDF vocabulary size")
    ngram_max: int = Field(2, ge=1, le=3, description="largest word n-gram (1..3)")
    C: float = Field(4.0, gt=0.0, description="inverse regularisation strength (positive)")


class EvaluateParams(Section):
    """``evaluate``: test-split metrics, calibration and the baseline."""

    batch_size: int = Field(128, ge=1, description="inference batch size")
    calibration_bins: int = Field(15, ge=2, le=100, description="bins for the calibration error")
    baseline: BaselineParams = BaselineParams()
