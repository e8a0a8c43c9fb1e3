"""Shared fixtures: a tiny random BERT, a learnable toy corpus, and params pointing at them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
TOY_LABELS = ["negative", "neutral", "positive"]


def tiny_params(**sections: dict[str, Any]) -> dict[str, Any]:
    """Params for the toy corpus and tiny backbone; ``sections`` override keys per section."""
    base: dict[str, Any] = {
        "data": {
            "path": "data/toy.csv",
            "encoding": "utf-8",
            "label_column": "label",
            "labels": TOY_LABELS,
        },
        "prepare": {"test_size": 0.15, "reference_size": 60},
        "model": {"backbone": "tiny", "max_length": 32},
        "train": {
            "epochs": 12,
            "batch_size": 16,
            "learning_rate": 1e-3,
            "bucket_batches": 2,
            "val_checks_per_epoch": 1,
            "warmup_ratio": 0.0,
            "num_threads": 1,
        },
        # The tiny random model's int8 graph need not agree with torch (its logits are close to
        # ties); fp32 parity is held to the production threshold. Latency on a few texts only.
        "export": {
            "int8_min_agreement": 0.0,
            "int8_max_f1_drop": 1.0,
            "latency_batch_sizes": [1, 8],
            "latency_sample_size": 16,
            "latency_runs": 1,
            "latency_warmup": 1,
            "threads": 1,
        },
        "explain": {
            "variant": "fp32",
            "sample_size": 24,
            "max_evals": 60,
            "min_token_count": 2,
            "top_k": 10,
            "examples_per_class": 1,
            "threads": 1,
        },
        "slices": {"min_support": 5},
        "drift": {"variant": "fp32", "threads": 1},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return base


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT with a word-level vocabulary, saved to disk."""
    from textclf_dev.toy import make_tiny_backbone

    return make_tiny_backbone(tmp_path_factory.mktemp("backbone") / "tiny")


#: The shipped data.expectations.yaml's keys that the toy corpus (short texts, a few hundred
#: rows) cannot meet, set for it; every other key is the shipped one.
TOY_EXPECTATIONS: dict[str, Any] = {
    "min_rows_per_class": 20,
    "text_chars": {"p5": {"min": 15}, "p50": {"min": 20, "max": 200}, "p95": {"min": 30}},
}


def expectations_yaml(**keys: Any) -> str:
    """The shipped data.expectations.yaml with the toy corpus's keys and ``keys`` replaced."""
    import yaml

    shipped = yaml.safe_load((REPO / "data.expectations.yaml").read_text(encoding="utf-8"))
    return yaml.safe_dump({**shipped, **TOY_EXPECTATIONS, **keys}, sort_keys=False)


def make_toy_root(root: Path, backbone: Path, rows: int = 300) -> Path:
    """Make ``root`` a working directory: data/toy.csv (``rows`` rows), the backbone at ./tiny,
    and a data.expectations.yaml the toy corpus meets."""
    from textclf_dev.toy import toy_frame

    (root / "data").mkdir(parents=True)
    toy_frame(rows).to_csv(root / "data" / "toy.csv", index=False)
    (root / "data.expectations.yaml").write_text(expectations_yaml(), encoding="utf-8")
    (root / "tiny").symlink_to(backbone, target_is_directory=True)
    return root


@pytest.fixture
def toy_root(tmp_path: Path, tiny_backbone: Path) -> Path:
    """A working directory with data/toy.csv (300 rows) and the tiny backbone at ./tiny."""
    return make_toy_root(tmp_path, tiny_backbone)
