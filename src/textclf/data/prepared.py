"""What ``prepare`` writes and every later stage reads: the splits' columns, labels and readers.

Small on purpose: every stage after ``prepare`` imports it, so ``dvc.yaml`` lists it in their
deps, and a change here reruns them all.
"""

from __future__ import annotations

import pandas as pd

from textclf import io
from textclf.errors import ArtifactError
from textclf.paths import Paths

#: Columns of a prepared split: the 1-based row of the raw file, the text, the label.
TEXT, LABEL, ROW = "text", "label", "row"


def read_labels(paths: Paths) -> list[str]:
    """The label set written by ``prepare``."""
    if not paths.labels_file.is_file():
        raise ArtifactError(f"{paths.labels_file} is missing. Fix: run `dvc repro prepare`.")
    labels: list[str] = io.read_json(paths.labels_file)["labels"]
    return labels


def read_split(paths: Paths, name: str) -> pd.DataFrame:
    """A split written by ``prepare``: ``train``, ``val``, ``test`` or ``reference``."""
    path = paths.split(name)
    if not path.is_file():
        raise ArtifactError(f"{path} is missing. Fix: run `dvc repro prepare`.")
    return pd.read_parquet(path)
