"""Fixtures of the behaviour tests: the repository's suite and bag-of-words exports whose
behaviour is known (one reads "not", one ignores it)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from textclf.paths import Paths
from textclf_dev.toy import make_lexicon_export

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "behaviour.yaml"


def suite_words() -> list[str]:
    """Every word of the repository's suite: the toy models' vocabulary."""
    return re.findall(r"[A-Za-z]+", SUITE.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def lexicon_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``reads_not``: negation moves answers away from positive; ``ignores_not``: it does not."""
    root = tmp_path_factory.mktemp("lexicon")
    return {
        "reads_not": make_lexicon_export(root / "reads_not", suite_words(), negation=True),
        "ignores_not": make_lexicon_export(root / "ignores_not", suite_words(), negation=False),
    }


def stage_root(root: Path, export: Path, labels: list[str] | None = None) -> Paths:
    """A checkout for the behaviour stage: the suite, labels.json and the export."""
    from textclf import io

    paths = Paths(root)
    shutil.copytree(export, paths.onnx_dir)
    shutil.copy(SUITE, paths.behaviour_suite)
    io.write_json(paths.labels_file, {"labels": labels or ["negative", "neutral", "positive"]})
    return paths
