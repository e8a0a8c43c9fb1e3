"""Tiny fixtures for tests and quick benchmarks: a random BERT and a learnable toy corpus.

Used by this repo's tests and ``make bench --quick``; forks can use them to test their stages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TOY_LABELS = ["negative", "neutral", "positive"]
_CUES = {
    "negative": ["awful", "terrible", "hate", "worst", "broken", "angry", "sad", "delayed"],
    "neutral": ["report", "meeting", "today", "schedule", "update", "monday", "listed", "notes"],
    "positive": ["great", "love", "excellent", "best", "happy", "amazing", "thanks", "wonderful"],
}
_FILLER = [
    "the",
    "a",
    "flight",
    "phone",
    "game",
    "car",
    "was",
    "is",
    "my",
    "this",
    "and",
    "with",
    "service",
    "team",
    "new",
    "on",
    "for",
    "it",
    "again",
    "very",
]
_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def toy_frame(n: int = 300, seed: int = 0, labels: list[str] | None = None) -> pd.DataFrame:
    """``n`` short texts whose label is given away by cue words (a tiny model can learn it)."""
    labels = labels or TOY_LABELS
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        cues = _CUES.get(label, [f"cue{label}"])
        words = list(rng.choice(_FILLER, size=int(rng.integers(3, 12))))
        for _ in range(int(rng.integers(1, 3))):
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(cues)))
        rows.append({"text": " ".join(words) + f" #{i}", "label": label})
    return pd.DataFrame(rows)


def toy_vocab() -> list[str]:
    """Word-level vocabulary covering :func:`toy_frame` (plus digits and punctuation)."""
    words = sorted({w for cues in _CUES.values() for w in cues} | set(_FILLER))
    chars = list("0123456789#@!?.,'-") + [f"##{d}" for d in "0123456789"]
    return _SPECIALS + words + ["http", "user"] + chars + [chr(c) for c in range(97, 123)]


def make_tiny_backbone(directory: Path, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Save a randomly initialised tiny BERT and its tokenizer to ``directory``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = toy_vocab()
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
        pad_token_id=0,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
