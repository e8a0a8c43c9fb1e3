"""explain: SHAP finds the words a model relies on, and the stage writes its three reports."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.exported import TinyExport
from textclf import io
from textclf.shap_text import explain, token_importance, word_tokenizer

CUES = {
    "negative": {"awful", "terrible", "hate", "worst", "broken", "angry", "sad", "delayed"},
    "neutral": {"report", "meeting", "today", "schedule", "update", "monday", "listed", "notes"},
    "positive": {"great", "love", "excellent", "best", "happy", "amazing", "thanks", "wonderful"},
}


def test_word_tokenizer_keeps_hashtags_mentions_and_contractions() -> None:
    out = word_tokenizer("@user I don't like #MondayBlues!!")
    assert out["input_ids"] == ["@user", "I", "don't", "like", "#MondayBlues", "!", "!"]
    text = "@user I don't like #MondayBlues!!"
    assert [text[a:b] for a, b in out["offset_mapping"]] == out["input_ids"]


def test_token_importance_finds_the_words_a_keyword_model_uses() -> None:
    """A transparent model: 'good' raises p(pos), 'bad' raises p(neg); SHAP must say so."""
    labels = ["neg", "pos"]

    def predict(texts: list[str]) -> np.ndarray:
        score = np.array([t.split().count("good") - t.split().count("bad") for t in texts])
        p_pos = 1 / (1 + np.exp(-2.0 * score))
        return np.stack([1 - p_pos, p_pos], axis=1)

    texts = [
        "the food was good",
        "bad service and bad coffee",
        "a good day",
        "it was bad",
        "good good music",
        "the bad movie",
    ]
    explanation = explain(predict, labels, texts, max_evals=50, batch_size=16)
    ranking = token_importance(explanation, labels, top_k=3, min_count=2)
    assert ranking["pos"]["top_positive"][0]["token"] == "good"
    assert ranking["neg"]["top_positive"][0]["token"] == "bad"
    assert ranking["pos"]["top_tokens"][0]["token"] in {"good", "bad"}
    good = next(t for t in ranking["pos"]["top_tokens"] if t["token"] == "good")
    assert good["count"] == 4 and good["mean_shap"] > 0.1
    # 'the' occurs twice but the model ignores it: no SHAP value at all.
    the = [t for r in ranking.values() for t in r["top_tokens"] if t["token"] == "the"]
    assert all(t["mean_abs_shap"] == pytest.approx(0.0, abs=1e-9) for t in the)


def test_explain_stage_writes_json_markdown_and_html(
    exported: TinyExport, stage_outputs: dict[str, Any]
) -> None:
    paths = exported.paths
    summary = io.read_json(paths.explain_summary)
    assert summary == stage_outputs["explain"]
    assert summary["sample_size"] == exported.params.explain.sample_size
    assert summary["model"]["variant"] == "fp32" and len(summary["model"]["version"]) == 12
    assert set(summary["classes"]) == set(CUES)
    for ranking in summary["classes"].values():
        assert 0 < len(ranking["top_tokens"]) <= exported.params.explain.top_k
        assert all(
            t["count"] >= exported.params.explain.min_token_count for t in ranking["top_tokens"]
        )
        scores = [t["mean_abs_shap"] for t in ranking["top_tokens"]]
        assert scores == sorted(scores, reverse=True)
    for label, items in summary["examples"].items():
        assert len(items) == 1 and items[0]["prediction"] == label
    markdown = paths.explain_markdown.read_text()
    assert "| negative |" in markdown and "Most confident examples" in markdown
    page = paths.explain_html.read_text()
    assert page.count("<h3>Most confident") == 3
    assert "<script" in page  # SHAP's interactive text plots are embedded


def test_explain_top_tokens_are_the_cue_words_the_model_learned(
    onnx_model: Any, stage_outputs: dict[str, Any]
) -> None:
    """The toy labels are given away by cue words; SHAP ranks the cues the model relies on first.

    The model relies on a class's cues when they raise that class's probability by 0.2 more than
    other classes' cues do. A model this accurate does so for at least one class; another class
    can be told apart by the absence of cues, and then its cue words carry little signal.
    """
    labels = onnx_model.labels
    cue_probs = {
        label: onnx_model.predict_proba([f"the flight was {w}" for w in CUES[label]]).mean(axis=0)
        for label in labels
    }
    learned = [
        label
        for c, label in enumerate(labels)
        if cue_probs[label][c] - max(cue_probs[o][c] for o in labels if o != label) > 0.2
    ]
    assert learned, cue_probs
    classes = stage_outputs["explain"]["classes"]
    for label in learned:
        pushing = [t["token"] for t in classes[label]["top_positive"][:3]]
        assert pushing[0] in CUES[label], (label, pushing)
        assert len(set(pushing) & CUES[label]) >= 2, (label, pushing)
    every_cue = set().union(*CUES.values())
    for label, ranking in classes.items():  # the strongest |SHAP| tokens are cues of some class
        assert ranking["top_tokens"][0]["token"] in every_cue, (label, ranking["top_tokens"])


def test_explain_refuses_a_model_for_other_labels(exported: TinyExport, tmp_path: Any) -> None:
    import shutil

    from textclf.errors import ArtifactError
    from textclf.paths import Paths
    from textclf.stages import explain as stage

    paths = Paths(tmp_path)
    shutil.copytree(exported.paths.prepared_dir, paths.prepared_dir)
    shutil.copytree(exported.paths.onnx_dir, paths.onnx_dir)
    io.write_json(paths.labels_file, {"labels": ["a", "b", "c"]})
    with pytest.raises(ArtifactError, match="dvc repro export"):
        stage.run(exported.params, paths)
