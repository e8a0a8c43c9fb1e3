"""explain: SHAP token importance of the exported ONNX model on a seeded test sample."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from textclf import io
from textclf.config.explain import ExplainParams
from textclf.data.prepared import read_labels, read_split
from textclf.outputs.explain import ExplainSummary
from textclf.paths import Paths
from textclf.shap_text import (
    PredictFn,
    example_summary,
    explain,
    most_confident,
    render_html,
    render_markdown,
    token_importance,
)


class Inputs(Protocol):
    """The params sections this stage reads: `dvc.yaml` lists the same (a test checks)."""

    @property
    def explain(self) -> ExplainParams: ...


def explain_sample(
    predict: PredictFn,
    labels: Sequence[str],
    sample: pd.DataFrame,
    cfg: ExplainParams,
    model: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """Explain ``sample`` (``text``, ``label``): the JSON summary and the HTML report."""
    texts = sample["text"].tolist()
    started = time.perf_counter()
    explanation = explain(
        predict, labels, texts, max_evals=cfg.max_evals, batch_size=cfg.batch_size, seed=cfg.seed
    )
    seconds = time.perf_counter() - started
    probs = np.asarray(predict(texts), dtype=np.float64)
    examples = most_confident(probs, labels, cfg.examples_per_class)
    summary: dict[str, Any] = {
        "model": model,
        "sample_size": len(texts),
        "max_evals": cfg.max_evals,
        "seed": cfg.seed,
        "min_token_count": cfg.min_token_count,
        "seconds": round(seconds, 2),
        "classes": token_importance(explanation, labels, cfg.top_k, cfg.min_token_count),
        "examples": {
            label: [
                {
                    "text": texts[i],
                    "label": str(sample["label"].iloc[i]),
                    "prediction": labels[int(probs[i].argmax())],
                    "probability": float(probs[i, c]),
                    "top_tokens": example_summary(explanation, i, c),
                }
                for i in indices
            ]
            for c, (label, indices) in enumerate(examples.items())
            if indices
        },
    }
    return summary, render_html(explanation, summary, examples)


def run(params: Inputs, paths: Paths) -> dict[str, Any]:
    """Explain a seeded test sample with the ONNX model; write JSON, Markdown and HTML."""
    from textclf.inference import load_for_labels

    cfg = params.explain
    labels = read_labels(paths)
    model = load_for_labels(paths.onnx_dir, cfg.variant, labels, threads=cfg.threads)
    test = read_split(paths, "test")
    sample = test.sample(n=min(cfg.sample_size, len(test)), random_state=cfg.seed)
    # Explain what the model reads: normalised text (URLs -> "http", mentions -> "@user").
    sample = sample.assign(text=model.encoder.normalize(sample["text"].tolist()))

    def predict(texts: list[str]) -> np.ndarray:
        return model.predict_proba(texts, cfg.batch_size)

    summary, page = explain_sample(
        predict, labels, sample, cfg, {"variant": cfg.variant, "version": model.version}
    )
    io.write_text(paths.explain_html, page)
    ExplainSummary.model_validate(summary).write(paths.explain_summary)  # validated, then written
    io.write_text(paths.explain_markdown, render_markdown(summary))
    return summary
