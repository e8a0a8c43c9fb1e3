"""Text slices (length, URL, mention, hashtag, emoji, negation), slice metrics and disparity.

Torch-free (numpy, pandas, scikit-learn): the slices stage, the drift check and the PR report use
the same predicates, so a slice means the same thing everywhere. The per-text descriptors are
:mod:`textclf.text_features` (standard library only), which the service uses too, so recorded
traffic features and the reference profile come from the same code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from textclf import text_features as tf
from textclf.config.slices import SlicesParams
from textclf.text_features import FLAG_FAMILIES

WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def word_count(texts: Sequence[str]) -> np.ndarray:
    """Whitespace-separated words per text."""
    return np.fromiter(map(tf.word_count, texts), dtype=np.int64, count=len(texts))


def char_count(texts: Sequence[str]) -> np.ndarray:
    """Characters per text."""
    return np.fromiter(map(tf.char_count, texts), dtype=np.int64, count=len(texts))


def non_letter_share(texts: Sequence[str]) -> np.ndarray:
    """Share of non-space characters that are not letters (digits, punctuation, symbols)."""
    return np.fromiter(map(tf.non_letter_share, texts), dtype=np.float64, count=len(texts))


def matches(pattern: re.Pattern[str], texts: Sequence[str]) -> np.ndarray:
    """Boolean mask: which texts contain ``pattern``."""
    return np.fromiter((tf.matches(pattern, t) for t in texts), dtype=bool, count=len(texts))


def has_negation(texts: Sequence[str], words: Sequence[str]) -> np.ndarray:
    """Boolean mask: texts with a negation word (``"n't"`` matches any word ending in n't)."""
    vocab = {w.lower().replace("’", "'") for w in words}
    suffix = "n't" in vocab
    out = np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        for word in WORD.findall(text.lower().replace("’", "'")):
            if word in vocab or (suffix and word.endswith("n't")):
                out[i] = True
                break
    return out


def text_features(texts: Sequence[str]) -> pd.DataFrame:
    """Offline text descriptors for drift: length, words, non-letter share, URL/mention/etc."""
    frame = pd.DataFrame(
        {
            "chars": char_count(texts),
            "words": word_count(texts),
            "non_letter_share": non_letter_share(texts),
        }
    )
    for family, (pattern, _) in FLAG_FAMILIES.items():
        frame[family] = matches(pattern, texts)
    return frame


def length_bucket_names(edges: Sequence[int], unit: str) -> list[str]:
    """Bucket names for ``edges``, e.g. ``words<=10``, ``words11-20``, ``words>20``."""
    names = [f"{unit}<={edges[0]}"]
    names += [f"{unit}{lo + 1}-{hi}" for lo, hi in pairwise(edges)]
    return [*names, f"{unit}>{edges[-1]}"]


def slice_masks(texts: Sequence[str], cfg: SlicesParams) -> dict[str, dict[str, np.ndarray]]:
    """Family -> slice name -> boolean mask; the slices of one family partition the texts."""
    families: dict[str, dict[str, np.ndarray]] = {}
    for family in cfg.families:
        if family == "length":
            sizes = word_count(texts) if cfg.length_unit == "words" else char_count(texts)
            bucket = np.searchsorted(np.asarray(cfg.length_edges), sizes, side="left")
            names = length_bucket_names(cfg.length_edges, cfg.length_unit)
            families[family] = {name: bucket == i for i, name in enumerate(names)}
            continue
        if family == "has_negation":
            mask, noun = has_negation(texts, cfg.negation_words), "negation"
        else:
            pattern, noun = FLAG_FAMILIES[family]
            mask = matches(pattern, texts)
        families[family] = {f"has_{noun}": mask, f"no_{noun}": ~mask}
    return families


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        # macro over the labels present in the slice (true or predicted)
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def _rates(values: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    return {lab: float(np.mean(values == lab)) if len(values) else 0.0 for lab in labels}


def disparity(
    slices: Mapping[str, Mapping[str, Mapping[str, Any]]],
    labels: Sequence[str],
    *,
    min_support: int,
    threshold: float,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Four-fifths check per family and class: each slice's prediction rate over the family's best.

    ``slices`` is ``family -> slice -> entry`` as :func:`slice_report` writes it (``support``,
    and ``prediction_rates`` / ``label_rates`` for scored slices), so the gate can judge a
    committed report again with other limits. Only slices with at least ``min_support`` rows
    take part; a family needs two such slices. Returns the ratios (family -> class -> slice) and
    the flagged entries. Raises ``ValueError`` for an eligible slice that has no rates.
    """
    table: dict[str, Any] = {}
    flagged: list[dict[str, Any]] = []
    for family, members in slices.items():
        eligible = {name: e for name, e in members.items() if int(e["support"]) >= min_support}
        if len(eligible) < 2:
            continue
        unrated = [name for name, e in eligible.items() if "prediction_rates" not in e]
        if unrated:
            raise ValueError(
                f"{family}/{', '.join(unrated)} has at least {min_support} rows but no "
                "prediction rates (it was not scored)"
            )
        table[family] = {}
        for lab in labels:
            rates = {name: float(e["prediction_rates"][lab]) for name, e in eligible.items()}
            label_rates = {name: float(e["label_rates"][lab]) for name, e in eligible.items()}
            best = max(rates, key=lambda name: rates[name])
            if rates[best] == 0.0:
                continue  # the class is never predicted in this family: nothing to compare
            # The same ratio for the true labels (against the same slice): how much of the
            # prediction-rate gap the data itself has.
            best_label = label_rates[best]
            entries = {}
            for name, rate in rates.items():
                ratio = rate / rates[best]
                entry = {
                    "rate": rate,
                    "ratio": ratio,
                    "label_rate": label_rates[name],
                    "label_ratio": (label_rates[name] / best_label) if best_label else None,
                    "flagged": ratio < threshold,
                }
                entries[name] = entry
                if entry["flagged"]:
                    flagged.append(
                        {
                            "family": family,
                            "class": lab,
                            "slice": name,
                            "rate": rate,
                            "ratio": ratio,
                            "max_slice": best,
                            "max_rate": rates[best],
                            "label_ratio": entry["label_ratio"],
                        }
                    )
            table[family][lab] = entries
    flagged.sort(key=lambda e: e["ratio"])
    return table, flagged


def slice_report(frame: pd.DataFrame, labels: Sequence[str], cfg: SlicesParams) -> dict[str, Any]:
    """Support, accuracy and macro-F1 per slice, and the disparity check, for predictions.

    ``frame`` has columns ``text``, ``label`` (true) and ``prediction``.
    """
    texts = frame["text"].tolist()
    y_true = frame["label"].to_numpy(dtype=object)
    y_pred = frame["prediction"].to_numpy(dtype=object)
    overall = {"support": len(frame), **_scores(y_true, y_pred)}
    masks = slice_masks(texts, cfg)
    slices: dict[str, dict[str, Any]] = {}
    unscored: list[str] = []
    for family, members in masks.items():
        slices[family] = {}
        for name, mask in members.items():
            support = int(mask.sum())
            entry: dict[str, Any] = {
                "support": support,
                "share": support / max(len(frame), 1),
                "scored": support >= cfg.min_support,
            }
            if entry["scored"]:
                scores = _scores(y_true[mask], y_pred[mask])
                entry.update(scores)
                entry["accuracy_delta"] = scores["accuracy"] - overall["accuracy"]
                entry["macro_f1_delta"] = scores["macro_f1"] - overall["macro_f1"]
                entry["prediction_rates"] = _rates(y_pred[mask], labels)
                entry["label_rates"] = _rates(y_true[mask], labels)
            else:
                entry["reason"] = f"support {support} < min_support {cfg.min_support}"
                unscored.append(f"{family}/{name}")
            slices[family][name] = entry
    table, flagged = disparity(
        slices, labels, min_support=cfg.min_support, threshold=cfg.disparity_threshold
    )
    return {
        "overall": overall,
        "min_support": cfg.min_support,
        "disparity_threshold": cfg.disparity_threshold,
        "slices": slices,
        "unscored": unscored,
        "disparity": table,
        "flagged": flagged,
        "n_flagged": len(flagged),
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def render_markdown(report: dict[str, Any]) -> str:
    """The slice report as Markdown: a metrics table per family and the flagged disparities."""
    overall = report["overall"]
    lines = [
        "## Slice metrics",
        "",
        f"Overall: {overall['support']} rows, accuracy {_pct(overall['accuracy'])}, "
        f"macro-F1 {overall['macro_f1']:.3f}. Slices under {report['min_support']} rows "
        "are listed but not scored.",
        "",
        "| family | slice | support | accuracy | Δ acc | macro-F1 | Δ F1 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for family, members in report["slices"].items():
        for name, s in members.items():
            if s["scored"]:
                lines.append(
                    f"| {family} | {name} | {s['support']} | {_pct(s['accuracy'])} | "
                    f"{100 * s['accuracy_delta']:+.1f} | {s['macro_f1']:.3f} | "
                    f"{s['macro_f1_delta']:+.3f} |"
                )
            else:
                lines.append(f"| {family} | {name} | {s['support']} | not scored | | | |")
    threshold = report["disparity_threshold"]
    lines += [
        "",
        "## Disparity (four-fifths rule)",
        "",
        f"Per class, each slice's prediction rate divided by the highest rate in its "
        f"family; flagged below {threshold:g}. The label ratio is the same ratio for the "
        "true labels: when it is low too, the gap is in the data, not only the model.",
        "",
    ]
    if not report["flagged"]:
        lines.append(f"No slice is flagged (all ratios >= {threshold:g}).")
    else:
        lines += [
            "| family | class | slice | rate | vs | best rate | ratio | label ratio |",
            "|---|---|---|---:|---|---:|---:|---:|",
        ]
        for f in report["flagged"]:
            label_ratio = "–" if f["label_ratio"] is None else f"{f['label_ratio']:.2f}"
            lines.append(
                f"| {f['family']} | {f['class']} | {f['slice']} | {_pct(f['rate'])} | "
                f"{f['max_slice']} | {_pct(f['max_rate'])} | {f['ratio']:.2f} | "
                f"{label_ratio} |"
            )
    return "\n".join(lines) + "\n"
