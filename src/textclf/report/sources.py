"""What the review compares: the files the stages wrote, in the workspace and at a base revision.

The workspace side is read from disk; the base side with ``git show <base>:<path>``, so the base
needs no checkout and no DVC cache (the metric files are committed with ``cache: false``).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from textclf import io, yamlio
from textclf.config.expectations import EXPECTATIONS_FILE
from textclf.errors import ConfigError, TextclfError
from textclf.gitcmd import run_git
from textclf.outputs.base import Report
from textclf.outputs.evaluate import EvaluateMetrics
from textclf.outputs.export import ExportMetrics
from textclf.outputs.headline import Run
from textclf.outputs.train import TrainMetrics
from textclf.repo_paths import RepoPaths

DEFAULT_BASES = ("origin/main", "main")
ReportT = TypeVar("ReportT", bound=Report)
CURVES = ("train/loss", "val/loss", "val/macro_f1", "val/accuracy")


class GitError(TextclfError):
    """git is missing, the directory is not a repository, or the base revision does not exist."""


@dataclass(frozen=True)
class Source:
    """One input file: its path relative to the root and the stage that writes it."""

    key: str
    path: str
    stage: str


def sources(paths: RepoPaths | None = None) -> dict[str, Source]:
    """Every file the report and the gate read, by key (paths relative to the repository root)."""
    p = paths or RepoPaths()

    def rel(path: Path) -> str:
        return path.relative_to(p.root).as_posix()

    entries = [
        Source("params", rel(p.params), "params"),
        Source("gate", rel(p.gate_file), "gate"),
        Source("data_dvc", rel(p.data_dvc), "data"),
        Source("expectations", EXPECTATIONS_FILE, EXPECTATIONS_FILE),
        Source("dvc_lock", rel(p.dvc_lock), "dvc.lock"),
        Source("prepare", rel(p.data_summary), "prepare"),
        Source("train", rel(p.train_reports / "metrics.json"), "train"),
        Source("evaluate", rel(p.metrics), "evaluate"),
        Source("confusion", rel(p.eval_dir / "confusion_matrix.json"), "evaluate"),
        Source("export", rel(p.export_metrics), "export"),
        Source("explain", rel(p.explain_summary), "explain"),
        Source("slices", rel(p.slices_metrics), "slices"),
        Source("drift", rel(p.drift_summary), "drift"),
        Source("behaviour", rel(p.behaviour_metrics), "behaviour"),
        Source("behaviour_suite", rel(p.behaviour_suite), "behaviour.yaml"),
        Source("bench", rel(p.bench_markdown), "bench"),
        Source("replay", rel(p.replay_summary), "replay"),
    ]
    entries += [
        Source(f"curve:{name}", rel(p.train_curves_dir / f"{name}.tsv"), "train") for name in CURVES
    ]
    return {s.key: s for s in entries}


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_git(root, *args, why="the review compares git revisions")
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode(errors="replace")
    )


def resolve_base(root: Path, base: str | None = None) -> tuple[str, str]:
    """The base revision's name and commit: ``base``, else origin/main, else main."""
    inside = _git(root, "rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        raise GitError(
            f"{root.resolve()} is not inside a git repository. Fix: run from a clone "
            "of the project (the report compares the workspace with a git revision)."
        )
    candidates = [base] if base else list(DEFAULT_BASES)
    for name in candidates:
        found = _git(root, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
        if found.returncode == 0:
            return name, found.stdout.strip()
    if base:
        branch = base.removeprefix("origin/")
        raise GitError(
            f"base revision '{base}' not found in {root.resolve()}. Fix: fetch it "
            f"(`git fetch origin {branch}`; in GitHub Actions use actions/checkout with "
            "`fetch-depth: 0`), or pass another --base (a branch, tag or commit)."
        )
    raise GitError(
        f"neither origin/main nor main exists in {root.resolve()}. Fix: `git fetch origin main`, "
        "or pass --base <ref> (e.g. --base master, or BASE=<ref> with make)."
    )


@dataclass
class Snapshot:
    """The raw text of every source at one revision (None where the file does not exist)."""

    label: str
    commit: str | None
    texts: dict[str, str | None]
    errors: list[str] = field(default_factory=list)
    #: Results the judge measured itself (not read from a file the side's stages wrote): the
    #: base's behaviour suite run on this side's export (:mod:`textclf.report.behaviour`).
    judged: dict[str, Any] = field(default_factory=dict)
    _reports: dict[str, Report | None] = field(default_factory=dict, repr=False)
    _report_errors: dict[str, str] = field(default_factory=dict, repr=False)

    def text(self, key: str) -> str | None:
        """The file's text, or None when it is missing."""
        return self.texts.get(key)

    def json(self, key: str) -> Any:
        """The parsed JSON of a source, or None when missing or unreadable (noted in errors)."""
        raw = self.texts.get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as err:
            self.errors.append(f"{self.label}: {sources()[key].path} is not valid JSON ({err})")
            return None

    def report(self, key: str, model: type[ReportT]) -> ReportT | None:
        """A source read through its typed model, or None when missing or invalid (noted in
        errors, with the fix)."""
        if key not in self._reports:  # parsed once: an invalid file is noted once
            raw = self.json(key)
            try:
                parsed = (
                    None
                    if raw is None
                    else model.parse(raw, f"{self.label}: {sources()[key].path}")
                )
            except TextclfError as err:
                self.errors.append(str(err))
                self._report_errors[key] = str(err)
                parsed = None
            self._reports[key] = parsed
        cached = self._reports[key]
        return cached if isinstance(cached, model) else None

    def report_error(self, key: str) -> str | None:
        """Why :meth:`report` gave None for a file that exists (which field, and the fix)."""
        return self._report_errors.get(key)

    def run(self) -> Run:
        """The typed reports the headline figures read."""
        return Run(
            evaluate=self.report("evaluate", EvaluateMetrics),
            export=self.report("export", ExportMetrics),
            train=self.report("train", TrainMetrics),
        )

    def yaml(self, key: str) -> Any:
        """The parsed YAML (1.2, as DVC reads it) of a source, or None when missing or unreadable.

        An unreadable file is noted in ``errors``.
        """
        raw = self.texts.get(key)
        if raw is None:
            return None
        try:
            return yamlio.parse(raw, f"{self.label}: {sources()[key].path}")
        except ConfigError as err:
            self.errors.append(str(err))
            return None

    def curve(self, name: str) -> list[tuple[float, float]]:
        """A DVCLive TSV curve as (step, value) pairs; empty when missing or malformed."""
        raw = self.texts.get(f"curve:{name}")
        points: list[tuple[float, float]] = []
        for line in (raw or "").splitlines()[1:]:
            cells = line.split("\t")
            try:
                points.append((float(cells[0]), float(cells[-1])))
            except (ValueError, IndexError):
                continue
        return points


def workspace_snapshot(root: Path) -> Snapshot:
    """The sources as they are on disk under ``root``."""
    texts = {}
    for key, src in sources().items():
        path = root / src.path
        texts[key] = path.read_text(encoding="utf-8") if path.is_file() else None
    return Snapshot("workspace", None, texts)


def revision_snapshot(root: Path, name: str, commit: str) -> Snapshot:
    """The sources as committed at ``commit`` (missing files are None)."""
    texts: dict[str, str | None] = {}
    for key, src in sources().items():
        shown = _git(root, "show", f"{commit}:{src.path}")
        texts[key] = shown.stdout if shown.returncode == 0 else None
    return Snapshot(name, commit, texts)


def head_commit(root: Path) -> str | None:
    """The commit checked out in the workspace (None in a repository without commits)."""
    found = _git(root, "rev-parse", "--verify", "--quiet", "HEAD")
    return found.stdout.strip() if found.returncode == 0 else None


def current_branch(root: Path) -> str | None:
    """The checked-out branch's name (None on a detached HEAD, as in a CI merge checkout)."""
    found = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD")
    return (found.stdout.strip() or None) if found.returncode == 0 else None


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys; lists and scalars are leaves."""
    if not isinstance(tree, dict):
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def numeric_leaves(tree: Any) -> dict[str, float]:
    """The numeric leaves (not booleans) of a nested dict, by dotted key; counts stay ints."""
    return {
        k: v
        for k, v in flatten(tree).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def data_md5(snapshot: Snapshot) -> str | None:
    """The md5 that data.dvc records for the data directory (None without data.dvc)."""
    return io.dvc_out_md5(snapshot.yaml("data_dvc"))


def params_diff(base: Snapshot, new: Snapshot) -> list[tuple[str, Any, Any]]:
    """Every params key whose value differs: (dotted key, base value, new value), sorted.

    A key missing on one side is reported with ``None`` there.
    """
    old = flatten(base.yaml("params") or {})
    cur = flatten(new.yaml("params") or {})
    return [
        (key, old.get(key), cur.get(key))
        for key in sorted(set(old) | set(cur))
        if old.get(key) != cur.get(key) or (key in old) != (key in cur)
    ]
