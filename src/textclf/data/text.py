"""Text normalisation and tokenisation shared by training, evaluation, export and serving.

Imports only ``tokenizers`` and numpy, so the serving image needs neither torch nor transformers.
The settings travel with the model in ``textclf.json`` (see :class:`ModelMeta`), so serving uses
exactly what training used.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

META_FILE = "textclf.json"
TOKENIZER_FILE = "tokenizer.json"

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Normalizer:
    """Deterministic text clean-up applied before tokenisation."""

    replace_urls: bool = True
    replace_mentions: bool = True
    lowercase: bool = False

    def __call__(self, text: str) -> str:
        """Normalise one text: NFKC, optional URL/mention placeholders, collapsed whitespace."""
        text = unicodedata.normalize("NFKC", text)
        if self.replace_urls:
            text = _URL.sub("http", text)
        if self.replace_mentions:
            text = _MENTION.sub("@user", text)
        if self.lowercase:
            text = text.lower()
        return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True)
class ModelMeta:
    """What serving needs to reproduce training's preprocessing and read the outputs."""

    labels: list[str]
    max_length: int
    pad_token_id: int
    normalizer: Normalizer = field(default_factory=Normalizer)
    backbone: str = ""

    def save(self, model_dir: Path) -> Path:
        """Write ``textclf.json`` into ``model_dir``."""
        path = Path(model_dir) / META_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, model_dir: Path) -> ModelMeta:
        """Read ``textclf.json`` from ``model_dir``."""
        raw = json.loads((Path(model_dir) / META_FILE).read_text(encoding="utf-8"))
        raw["normalizer"] = Normalizer(**raw.get("normalizer", {}))
        return cls(**raw)


class TextEncoder:
    """Normalise and tokenise texts into unpadded id lists, then pad batches dynamically."""

    def __init__(self, tokenizer: Tokenizer, meta: ModelMeta) -> None:
        tok = Tokenizer.from_str(tokenizer.to_str())  # private copy: settings below are ours
        tok.no_padding()
        tok.enable_truncation(max_length=meta.max_length)
        self.tokenizer = tok
        self.meta = meta

    @classmethod
    def from_dir(cls, model_dir: Path) -> TextEncoder:
        """Load the tokenizer and preprocessing settings saved next to a model."""
        model_dir = Path(model_dir)
        return cls(Tokenizer.from_file(str(model_dir / TOKENIZER_FILE)), ModelMeta.load(model_dir))

    def normalize(self, texts: Sequence[str]) -> list[str]:
        """Apply the model's normaliser to each text."""
        return [self.meta.normalizer(t) for t in texts]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text (special tokens added, truncated to ``max_length``, no padding)."""
        encodings = self.tokenizer.encode_batch(self.normalize(texts))
        return [e.ids for e in encodings]

    def pad(self, ids: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """Pad id lists to the longest in the batch: ``input_ids``, ``attention_mask`` (int64)."""
        width = max((len(x) for x in ids), default=1)
        input_ids = np.full((len(ids), width), self.meta.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Encode and pad a batch of texts."""
        return self.pad(self.encode(texts))


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Index batches in order of length, so padding waste is small at inference time."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, numerically stable."""
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
