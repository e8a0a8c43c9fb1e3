"""The default corpus bootstrap: byte-identical copy, idempotent, never clobbers user data."""

from __future__ import annotations

from pathlib import Path

import pytest

from textclf.data.bootstrap import bootstrap, corpus_path
from textclf.errors import DataError


def test_bootstrap_copies_the_corpus_once(tmp_path: Path) -> None:
    target, written = bootstrap(tmp_path)
    assert written and target == tmp_path / "data" / "tweets.csv"
    assert target.read_bytes() == corpus_path().read_bytes()
    assert bootstrap(tmp_path) == (target, False)


def test_bootstrap_refuses_to_overwrite_different_data(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tweets.csv").write_text("text,label\nmine,positive\n")
    with pytest.raises(DataError, match="differs from the default corpus.*--force"):
        bootstrap(tmp_path)
    assert (tmp_path / "data" / "tweets.csv").read_text().startswith("text,label")
    _, written = bootstrap(tmp_path, force=True)
    assert written


def test_default_corpus_passes_validation(tmp_path: Path) -> None:
    from tests.conftest import REPO
    from textclf.config.params import load_params
    from textclf.data.load import load_dataset

    bootstrap(tmp_path)
    df = load_dataset(tmp_path, load_params(REPO / "params.yaml").data)
    assert len(df) == 38158
    assert set(df["label"]) == {"negative", "neutral", "positive"}


def test_modified_data_is_refused_not_overwritten(tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import REPO
    from textclf.data.bootstrap import ensure_data

    (tmp_path / "data.dvc").write_text((REPO / "data.dvc").read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(REPO / ".venv" / "bin" / "dvc"), "init", "-q"], cwd=tmp_path, check=True)
    bootstrap(tmp_path)
    with (tmp_path / "data" / "tweets.csv").open("a") as fh:
        fh.write("positive,1.0,an extra row\n")
    with pytest.raises(DataError, match=r"does not match data.dvc \(modified\).*dvc pull"):
        ensure_data(tmp_path)
    assert (
        (tmp_path / "data" / "tweets.csv").read_text(encoding="latin-1").endswith("an extra row\n")
    )
