"""``explain``: SHAP token attributions for the exported ONNX model."""

from __future__ import annotations

from pydantic import Field

from textclf.config.base import OnnxVariant, Section


class ExplainParams(Section):
    """``explain``: SHAP token attributions for the exported ONNX model on a test sample."""

    variant: OnnxVariant = Field(
        "int8", description="ONNX graph to explain: 'int8' (what CPU serving runs) or 'fp32'"
    )
    seed: int = Field(42, description="random seed for the test sample and SHAP (an integer)")
    sample_size: int = Field(
        100,
        ge=1,
        le=5000,
        description="test texts explained (1..5000); runtime grows linearly with it",
    )
    max_evals: int = Field(
        200,
        ge=10,
        le=5000,
        description="model calls SHAP may spend per text (10..5000); lower it to run faster",
    )
    batch_size: int = Field(64, ge=1, le=4096, description="texts per ONNX Runtime call")
    threads: int = Field(
        0, ge=0, description="ONNX Runtime intra-op threads; 0 keeps its default (one per core)"
    )
    top_k: int = Field(15, ge=1, le=200, description="tokens listed per class (1..200)")
    min_token_count: int = Field(
        3, ge=1, description="tokens seen fewer times in the sample are not ranked (>= 1)"
    )
    examples_per_class: int = Field(
        2,
        ge=0,
        le=20,
        description="most confident sample texts per class rendered in the HTML report (0..20)",
    )
