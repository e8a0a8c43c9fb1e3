"""SHAP token attributions for any ``texts -> probabilities`` function, and their summaries.

Model-agnostic (the ``explain`` stage passes the ONNX model's ``predict_proba``): texts are split
into words, hashtags, mentions and single punctuation marks; SHAP's partition explainer masks
them (with ``...``) within a budget of ``max_evals`` model calls per text.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

PredictFn = Callable[[list[str]], np.ndarray]
TOKEN = re.compile(r"[@#]?\w+(?:['’]\w+)*|[^\w\s]")
MASK = "... "  # trailing space: a masked word never glues onto the next one


def word_tokenizer(text: str, return_offsets_mapping: bool = True) -> dict[str, list[Any]]:
    """Split ``text`` into word-level tokens, in the format SHAP's text masker expects."""
    found = list(TOKEN.finditer(text))
    out: dict[str, list[Any]] = {"input_ids": [m.group() for m in found]}
    if return_offsets_mapping:
        out["offset_mapping"] = [m.span() for m in found]
    return out


def explain(
    predict: PredictFn,
    labels: Sequence[str],
    texts: Sequence[str],
    *,
    max_evals: int,
    batch_size: int = 64,
    seed: int = 0,
) -> Any:
    """SHAP values of each class probability for each text: a ``shap.Explanation``."""
    import shap

    def model(masked: Any) -> np.ndarray:
        return np.asarray(predict([str(t) for t in masked]), dtype=np.float64)

    masker = shap.maskers.Text(word_tokenizer, mask_token=MASK)
    explainer = shap.Explainer(
        model, masker, output_names=list(labels), algorithm="partition", seed=seed
    )
    return explainer(list(texts), max_evals=max_evals, batch_size=batch_size, silent=True)


def _token(segment: str) -> str:
    return segment.strip().casefold()


def _rank(tokens: list[str], totals: Any, counts: Any, c: int) -> list[str]:
    """``tokens`` by mean of ``totals[token][c]`` (largest first; ties by token)."""
    return sorted(tokens, key=lambda token: (-totals[token][c] / counts[token], token))


def token_importance(
    explanation: Any, labels: Sequence[str], top_k: int, min_count: int
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per class: tokens by mean |SHAP| (``top_tokens``) and by mean SHAP (``top_positive``).

    A token's statistics pool all its occurrences in the explained texts (case-insensitive);
    tokens seen fewer than ``min_count`` times are not ranked.
    """
    sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(labels)))
    abs_sums: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(labels)))
    counts: dict[str, int] = defaultdict(int)
    for i in range(len(explanation)):
        values = np.asarray(explanation.values[i], dtype=np.float64)
        for segment, row in zip(explanation.data[i], values, strict=True):
            token = _token(str(segment))
            if not token:
                continue
            sums[token] += row
            abs_sums[token] += np.abs(row)
            counts[token] += 1
    ranked = [t for t in counts if counts[t] >= min_count]
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for c, label in enumerate(labels):

        def entry(token: str, c: int = c) -> dict[str, Any]:
            return {
                "token": token,
                "count": counts[token],
                "mean_abs_shap": float(abs_sums[token][c] / counts[token]),
                "mean_shap": float(sums[token][c] / counts[token]),
            }

        by_abs = _rank(ranked, abs_sums, counts, c)
        by_mean = _rank(ranked, sums, counts, c)
        out[label] = {
            "top_tokens": [entry(t) for t in by_abs[:top_k]],
            "top_positive": [entry(t) for t in by_mean[:top_k] if sums[t][c] > 0],
        }
    return out


def most_confident(
    probs: np.ndarray, labels: Sequence[str], per_class: int
) -> dict[str, list[int]]:
    """Indices of the ``per_class`` texts with the highest probability of each class."""
    return {
        label: [int(i) for i in np.argsort(-probs[:, c], kind="stable")[:per_class]]
        for c, label in enumerate(labels)
    }


def example_summary(
    explanation: Any, index: int, label_index: int, n_tokens: int = 5
) -> list[dict[str, Any]]:
    """The ``n_tokens`` tokens of one text that push most towards class ``label_index``."""
    values = np.asarray(explanation.values[index], dtype=np.float64)[:, label_index]
    segments = [str(s) for s in explanation.data[index]]
    order = np.argsort(-values, kind="stable")[:n_tokens]
    return [
        {"token": _token(segments[j]), "shap": float(values[j])}
        for j in order
        if values[j] > 0 and _token(segments[j])
    ]


def render_html(explanation: Any, summary: dict[str, Any], examples: dict[str, list[int]]) -> str:
    """A standalone page: top tokens per class, then SHAP's own text plots of the examples."""
    import shap

    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>SHAP token importance</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "margin:0 1.5em 1.5em 0;display:inline-table}td,th{border:1px solid #ccc;"
        "padding:2px 8px;text-align:right}td:first-child{text-align:left}</style>",
        "</head><body><h1>SHAP token importance</h1>",
        f"<p>ONNX graph {esc(summary['model']['variant'])} (version "
        f"{esc(str(summary['model'].get('version')))}); {summary['sample_size']} texts, "
        f"up to {summary['max_evals']} model calls each; masked tokens read "
        f"<code>{MASK}</code>.</p><h2>Top tokens per class (mean SHAP of the class "
        "probability)</h2>",
    ]
    for label, ranking in summary["classes"].items():
        rows = "".join(
            f"<tr><td>{esc(t['token'])}</td><td>{t['mean_shap']:+.4f}</td>"
            f"<td>{t['mean_abs_shap']:.4f}</td><td>{t['count']}</td></tr>"
            for t in ranking["top_positive"]
        )
        parts.append(
            f"<table><caption>{esc(label)}</caption><tr><th>token</th><th>mean SHAP"
            f"</th><th>mean |SHAP|</th><th>count</th></tr>{rows}</table>"
        )
    parts.append(
        "<h2>Explained examples</h2><p>The texts the model is most sure belong to each "
        "class. Click a class name above a plot to see its SHAP values.</p>"
    )
    for label, indices in examples.items():
        parts.append(f"<h3>Most confident '{esc(label)}'</h3>")
        for i in indices:
            parts.append(shap.plots.text(explanation[i], display=False))
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(summary: dict[str, Any], tokens_shown: int = 10) -> str:
    """A short Markdown summary: tokens pushing towards each class and the example texts."""
    lines = [
        "## SHAP token importance",
        "",
        f"{summary['sample_size']} test texts explained on the {summary['model']['variant']} "
        f"ONNX graph (up to {summary['max_evals']} model calls per text, "
        f"{summary['seconds']:.0f} s). Mean SHAP is the average change in the class "
        "probability a token causes; tokens seen fewer than "
        f"{summary['min_token_count']} times are not ranked.",
        "",
        "| class | tokens pushing towards it (mean SHAP, count) |",
        "|---|---|",
    ]
    for label, ranking in summary["classes"].items():
        cells = ", ".join(
            f"`{t['token']}` ({t['mean_shap']:+.3f}, {t['count']})"
            for t in ranking["top_positive"][:tokens_shown]
        )
        lines.append(f"| {label} | {cells or '–'} |")
    if summary["examples"]:
        lines += [
            "",
            "### Most confident examples",
            "",
            "| class | p | text | top tokens |",
            "|---|---:|---|---|",
        ]
        for label, items in summary["examples"].items():
            for item in items:
                text = item["text"].replace("|", "\\|")
                text = text if len(text) <= 120 else text[:117] + "..."
                tokens = ", ".join(f"`{t['token']}`" for t in item["top_tokens"])
                lines.append(f"| {label} | {item['probability']:.2f} | {text} | {tokens} |")
    return "\n".join(lines) + "\n"
