"""dvc.lock and ``dvc status``: which outputs a commit records, and whether the workspace has them.

The tag is computed from the md5s ``dvc.lock`` records (known without the files, so ``--rev``
works anywhere); ``dvc status`` proves that the files on disk are those before a build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from textclf.errors import ReleaseError
from textclf.release.git import git

if TYPE_CHECKING:
    from textclf.release.tag import ReleaseInputs

#: `dvc status` states of an output that is simply not in this checkout.
ABSENT = frozenset({"deleted", "not in cache"})


@dataclass(frozen=True)
class LockOut:
    """One output recorded in dvc.lock."""

    stage: str
    path: str
    md5: str


def lock_outputs(lock: Any, source: str = "dvc.lock") -> dict[str, LockOut]:
    """Every output recorded in a parsed dvc.lock (schema 2.0), by path."""
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        raise ReleaseError(
            f"{source} has no `stages:` mapping (DVC 3 schema 2.0 expected): run `dvc repro` "
            "to rewrite it"
        )
    outs: dict[str, LockOut] = {}
    for stage, entry in stages.items():
        for out in (entry or {}).get("outs") or []:
            md5 = out.get("md5")
            if not md5:
                raise ReleaseError(
                    f"{source}: output {out.get('path')!r} of stage {stage!r} has no md5: run "
                    "`dvc repro` (or `dvc commit`) to record it"
                )
            path = str(out["path"]).rstrip("/")
            outs[path] = LockOut(stage=str(stage), path=path, md5=str(md5))
    return outs


def uncommitted(root: Path, paths: Iterable[str]) -> list[str]:
    """Those of ``paths`` whose working-tree content differs from HEAD (or that HEAD lacks)."""
    wanted = sorted(set(paths))
    if not wanted:
        return []
    try:
        git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except ReleaseError:
        return wanted
    listed = git(root, "status", "--porcelain", "-z", "--untracked-files=all", "--", *wanted)
    changed = set()
    for entry in listed.decode().split("\0"):
        if len(entry) > 3:
            changed.add(entry[3:])
    return [p for p in wanted if p in changed]


# --------------------------------------------------------------------------- dvc status


def dvc_status(root: Path) -> dict[str, Any]:
    """``dvc status --json`` of the whole pipeline in ``root``."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "dvc", "status", "--json"],
            cwd=root,
            capture_output=True,
            text=True,
        )
    except OSError as err:
        raise ReleaseError(f"cannot run `dvc status`: {err}") from err
    if proc.returncode != 0:
        raise ReleaseError(
            f"`dvc status` failed in {root}: {proc.stderr.strip() or proc.stdout.strip()} "
            "(is another dvc command running? wait for it, then retry)"
        )
    text = proc.stdout.strip()
    try:
        return dict(json.loads(text)) if text else {}
    except json.JSONDecodeError as err:
        raise ReleaseError(
            f"`dvc status --json` printed something else than JSON: {text[:300]}"
        ) from err


def _under(path: str, roots: Iterable[str]) -> str | None:
    path = path.rstrip("/")
    for root in roots:
        if path == root or path.startswith(root + "/"):
            return root
    return None


def status_problems(  # noqa: C901  one branch per kind of `dvc status` entry, each with its own fix
    status: Mapping[str, Any], inputs: ReleaseInputs
) -> list[str]:
    """What in ``dvc status`` (and dvc.lock itself) says the shipped outputs are not reviewed.

    A DVC output that is not shipped may be absent ("deleted", or "not in cache" in a fresh
    clone): the release job pulls only the shipped outputs. Every other change counts: a
    modified dependency, param or command, a shipped output that is missing or differs from
    dvc.lock. Where a missing output feeds a
    stage, dvc.lock must still record the same md5 on both sides.
    """
    dvc_outs = set(inputs.lock_outs)
    for name, entries in status.items():
        if name.endswith(".dvc"):
            for entry in entries:
                if isinstance(entry, dict):
                    dvc_outs.update(entry.get("changed outs", {}))
    problems: list[str] = []
    for name, entries in status.items():
        for entry in entries:
            if isinstance(entry, str):
                problems.append(f"{name}: {entry}")
                continue
            for kind, changes in entry.items():
                if not isinstance(changes, dict):
                    problems.append(f"{name}: {kind}")
                    continue
                for path, state in changes.items():
                    if (
                        isinstance(state, str)
                        and state in ABSENT
                        and _under(path, dvc_outs)
                        and not _under(path, inputs.outs)
                    ):
                        continue
                    shown = state if isinstance(state, str) else json.dumps(state)
                    problems.append(f"{name}: {kind} {path}: {shown}")
    return problems


def lock_problems(lock: Any, lock_outs: Mapping[str, LockOut]) -> list[str]:
    """Stages whose dvc.lock dependency md5 disagrees with the producing stage's output md5."""
    problems = []
    for stage, entry in (lock.get("stages") or {}).items():
        for dep in (entry or {}).get("deps") or []:
            out = lock_outs.get(str(dep.get("path", "")).rstrip("/"))
            if out is not None and out.stage != stage and dep.get("md5") != out.md5:
                problems.append(
                    f"{stage}: dvc.lock records {out.path} as {dep.get('md5')}, but stage "
                    f"{out.stage} wrote {out.md5}"
                )
    return problems


def verify_outputs(root: Path, inputs: ReleaseInputs) -> None:
    """Raise unless ``dvc status`` is clean for what ships and dvc.lock agrees with itself."""
    problems = status_problems(dvc_status(root), inputs)
    lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))
    problems += lock_problems(lock, inputs.lock_outs)
    if problems:
        shipped = " ".join(sorted(inputs.outs))
        raise ReleaseError(
            "what would ship is not what dvc.lock records (`dvc status`):\n  "
            + "\n  ".join(problems)
            + "\nRun `dvc repro` and commit dvc.lock (after `dvc pull` if outputs are missing; "
            f"the release job pulls only {shipped}). Run `dvc commit` instead if you changed "
            "outputs on purpose."
        )
