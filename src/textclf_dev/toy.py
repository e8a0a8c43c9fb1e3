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


#: Word weights of :func:`make_lexicon_export` (negative, neutral, positive logits per word).
LEXICON: dict[str, tuple[float, float, float]] = {
    **{w: (0.0, 0.0, 3.0) for w in ("great", "amazing", "excellent", "wonderful", "fantastic")},
    **{w: (0.0, 0.0, 3.0) for w in ("awesome", "lovely", "perfect", "love", "enjoy", "adore")},
    **{w: (0.0, 0.0, 3.0) for w in ("appreciate", "happy", "thanks", "best", "incredible")},
    **{w: (3.0, 0.0, 0.0) for w in ("terrible", "awful", "horrible", "disappointing", "useless")},
    **{w: (3.0, 0.0, 0.0) for w in ("annoying", "broken", "pathetic", "hate", "despise")},
    **{w: (3.0, 0.0, 0.0) for w in ("regret", "resent", "worst", "never", "ridiculous")},
}
#: The negation cue of the lexicon model: pushes away from positive (and, less, from negative).
NEGATION: dict[str, tuple[float, float, float]] = {
    w: (2.0, 2.5, -5.0) for w in ("not", "don", "doesn", "didn", "isn", "wasn", "no")
}


def make_lexicon_export(
    directory: Path,
    words: list[str],
    *,
    negation: bool = True,
    labels: list[str] | None = None,
) -> Path:
    """An ONNX export (as ``textclf export`` writes it) of a bag-of-words model with known weights.

    Logits are a neutral bias plus the sum of :data:`LEXICON` weights of the text's tokens, and,
    with ``negation``, of :data:`NEGATION`'s: a model whose behaviour a test can predict, e.g.
    one that ignores "not" (``negation=False``). ``words`` become the vocabulary (lower-cased;
    anything else is ``[UNK]`` and weighs nothing). Both variants are the same graph.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    from textclf.data.text import TOKENIZER_FILE, ModelMeta

    labels = labels or TOY_LABELS
    weights = {**LEXICON, **(NEGATION if negation else {})}
    vocab = ["[PAD]", "[UNK]", *sorted({w.lower() for w in words} | set(LEXICON) | set(NEGATION))]
    table = np.zeros((len(vocab), len(labels)), dtype=np.float32)
    for i, word in enumerate(vocab):
        if word in weights and len(labels) == len(TOY_LABELS):
            table[i] = weights[word]
    bias = np.zeros(len(labels), dtype=np.float32)
    bias[min(1, len(labels) - 1)] = 0.5  # no cue: the middle class (neutral)

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(directory / TOKENIZER_FILE))
    ModelMeta(labels=list(labels), max_length=64, pad_token_id=0, backbone="toy-lexicon").save(
        directory
    )
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["per_token"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["per_token", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("Add", ["summed", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "toy_lexicon",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(labels)])],
        initializer=[
            numpy_helper.from_array(table, "table"),
            numpy_helper.from_array(bias, "bias"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    for name in ("model.onnx", "model.int8.onnx"):
        onnx.save(model, str(directory / name))
    return directory
