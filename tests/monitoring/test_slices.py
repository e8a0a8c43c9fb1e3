"""Slices: the predicates, per-slice metrics, min support, and the four-fifths disparity check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.exported import TinyExport
from textclf import io
from textclf.config.slices import SlicesParams
from textclf.monitoring.slices import (
    has_negation,
    slice_masks,
    slice_report,
    text_features,
)

LABELS = ["negative", "neutral", "positive"]


def test_predicates_match_urls_mentions_hashtags_emoji() -> None:
    texts = [
        "see https://t.co/x1 now",
        "@united lost my bag",
        "so #blessed",
        "ok 😀",
        "flight #12 on&#39;time",
        "email me@example.com",
    ]
    features = text_features(texts)
    assert features["has_url"].tolist() == [True, False, False, False, False, False]
    assert features["has_mention"].tolist() == [False, True, False, False, False, False]
    # '#12' and the HTML entity '&#39;' are not hashtags; 'me@example' is not a mention.
    assert features["has_hashtag"].tolist() == [False, False, True, False, False, False]
    assert features["has_emoji"].tolist() == [False, False, False, True, False, False]
    assert features["words"].tolist() == [3, 4, 2, 2, 3, 2]
    assert features["non_letter_share"].iloc[3] == pytest.approx(1 / 3)


def test_negation_words_and_contractions() -> None:
    words = SlicesParams().negation_words
    texts = [
        "I don't like it",
        "No way",
        "never again",
        "I know it",
        "nothing",
        "it isn’t",
        "notable flight",
    ]
    assert has_negation(texts, words).tolist() == [True, True, True, False, True, True, False]


def test_length_buckets_partition_the_texts() -> None:
    cfg = SlicesParams(families=["length"], length_edges=[2, 4])
    texts = ["a", "a b", "a b c", "a b c d", "a b c d e"]
    masks = slice_masks(texts, cfg)["length"]
    assert list(masks) == ["words<=2", "words3-4", "words>4"]
    assert [m.tolist() for m in masks.values()] == [
        [True, True, False, False, False],
        [False, False, True, True, False],
        [False, False, False, False, True],
    ]
    chars = slice_masks(
        texts, SlicesParams(families=["length"], length_unit="chars", length_edges=[3])
    )["length"]
    assert chars["chars<=3"].tolist() == [True, True, False, False, False]


def _frame(
    n_url: int, n_plain: int, url_pred: list[str], plain_pred: list[str], seed: int = 0
) -> pd.DataFrame:
    """``n_url`` texts with a URL and ``n_plain`` without; predictions cycle through the lists."""
    rng = np.random.default_rng(seed)
    true = [LABELS[i % 3] for i in range(n_url + n_plain)]
    rng.shuffle(true)
    texts = [f"news {i} http://x.co/{i}" for i in range(n_url)] + [
        f"plain text {i}" for i in range(n_plain)
    ]
    preds = [url_pred[i % len(url_pred)] for i in range(n_url)] + [
        plain_pred[i % len(plain_pred)] for i in range(n_plain)
    ]
    return pd.DataFrame({"text": texts, "label": true, "prediction": preds})


def test_disparity_flags_a_biased_predictor() -> None:
    """Texts with URLs are almost never predicted positive: the four-fifths rule flags it."""
    cfg = SlicesParams(families=["has_url"], min_support=30)
    biased = _frame(
        90,
        90,
        url_pred=[
            "negative",
            "neutral",
            "negative",
            "neutral",
            "negative",
            "neutral",
            "negative",
            "neutral",
            "negative",
            "positive",
        ],
        plain_pred=LABELS,
    )
    report = slice_report(biased, LABELS, cfg)
    flagged = {(f["class"], f["slice"]) for f in report["flagged"]}
    assert ("positive", "has_url") in flagged
    entry = next(f for f in report["flagged"] if f["class"] == "positive")
    assert entry["max_slice"] == "no_url"
    assert entry["ratio"] == pytest.approx((9 / 90) / (30 / 90))
    # The labels' own ratio, against the same reference slice: the data is not biased here.
    url = biased["text"].str.contains("http")
    label_rate = {
        s: float((biased["label"][m] == "positive").mean())
        for s, m in (("has_url", url), ("no_url", ~url))
    }
    assert entry["label_ratio"] == pytest.approx(label_rate["has_url"] / label_rate["no_url"])
    assert report["n_flagged"] == len(report["flagged"])
    table = report["disparity"]["has_url"]["positive"]
    assert table["no_url"]["ratio"] == 1.0 and not table["no_url"]["flagged"]


def test_disparity_does_not_flag_a_fair_predictor() -> None:
    fair = _frame(90, 90, url_pred=LABELS, plain_pred=LABELS)
    report = slice_report(fair, LABELS, SlicesParams(families=["has_url"], min_support=30))
    assert report["flagged"] == []
    ratios = [
        e["ratio"]
        for by_class in report["disparity"]["has_url"].values()
        for e in by_class.values()
    ]
    assert min(ratios) == pytest.approx(1.0)


def test_slices_under_min_support_are_listed_not_scored() -> None:
    frame = _frame(10, 90, url_pred=["positive"], plain_pred=LABELS)
    report = slice_report(frame, LABELS, SlicesParams(families=["has_url"], min_support=30))
    small = report["slices"]["has_url"]["has_url"]
    assert small["support"] == 10 and small["scored"] is False
    assert "accuracy" not in small and "30" in small["reason"]
    assert report["unscored"] == ["has_url/has_url"]
    # Only one slice of the family is big enough: nothing to compare, nothing flagged.
    assert report["disparity"] == {} and report["flagged"] == []
    big = report["slices"]["has_url"]["no_url"]
    assert big["scored"] and big["accuracy"] == pytest.approx(
        np.mean(frame["label"][10:] == frame["prediction"][10:])
    )


def test_slices_stage_scores_the_test_predictions(
    exported: TinyExport, stage_outputs: dict[str, Any]
) -> None:
    paths = exported.paths
    report = io.read_json(paths.slices_metrics)
    assert report == stage_outputs["slices"]
    predictions = pd.read_parquet(paths.predictions)
    assert report["overall"]["support"] == len(predictions)
    assert report["overall"]["accuracy"] == pytest.approx(
        float((predictions["label"] == predictions["prediction"]).mean())
    )
    assert set(report["slices"]) == set(exported.params.slices.families)
    for members in report["slices"].values():  # each family partitions the test split
        assert sum(s["support"] for s in members.values()) == len(predictions)
    # Toy texts carry no URL: that slice is empty, so unscored.
    assert report["slices"]["has_url"]["has_url"]["support"] == 0
    assert "has_url/has_url" in report["unscored"]
    markdown = paths.slices_markdown.read_text()
    assert "| has_url | has_url | 0 | not scored |" in markdown
    assert "Disparity (four-fifths rule)" in markdown
