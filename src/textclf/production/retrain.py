"""``textclf retrain propose``: labelled production traffic becomes a retrain pull request.

Over a traffic snapshot (a snapshot directory such as ``traffic/``, the latest of a prefix or
URL, fetched but not imported, or a traffic-log directory), the requests users labelled
(``POST /feedback``) that kept their text are the candidate rows. Copies among them, and texts
the data already has (``data.path`` and every ``data.train_only_paths`` file, compared the way
``prepare`` de-duplicates), are dropped. With at least ``monitor.retrain_min_labels`` new rows,
in the repository:

1. branch ``retrain/<UTC date>`` from HEAD (main);
2. write the rows to ``data/production/<snapshot stamp>.csv`` (UTF-8, the data's columns) and
   add it to ``data.train_only_paths`` (DVC's YAML round trip: layout and comments kept), so
   ``prepare`` puts them in the train split only and the test split stays the one main has;
3. ``dvc add data``, ``dvc repro``, ``dvc push`` (the default remote), the release tags into the
   overlays (``textclf release manifests``);
4. commit ``data.dvc``, ``params.yaml``, ``dvc.lock``, ``reports/`` and ``deploy/overlays``, push
   the branch to the git remote;
5. write the PR body (Markdown: the rows and their window, the test split, test macro-F1 and
   accuracy against main's committed metrics, the monitor's findings) and a JSON result
   (``branch``, ``rows``, ``beats_main``) for the workflow.

Fewer new rows: nothing is proposed (the result says how many). Any failure names what failed
and the fix, deletes the branch it made and switches back: main is never touched.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from textclf import io
from textclf.config.params import Params, load_params
from textclf.data.load import load_dataset, load_train_only
from textclf.data.prepared import LABEL, TEXT
from textclf.data.split import NewRowStats, new_rows
from textclf.dvccmd import run_dvc
from textclf.errors import TextclfError
from textclf.gitcmd import run_git
from textclf.lifecycle.rollout import PUSH_TOKEN_ENV, push_args
from textclf.monitoring.snapshot import STAMP_FORMAT
from textclf.outputs.evaluate import EvaluateMetrics
from textclf.production.importer import locate
from textclf.production.replay import Request, load_requests

PRODUCTION_DIR = "data/production"
METRICS = "reports/evaluate/metrics.json"
TEST_SPLIT = "artifacts/prepared/test.parquet"
BODY = Path("reports/retrain/pr.md")
RESULT = Path("reports/retrain/result.json")
MONITOR_MD = Path("reports/monitor/summary.md")
LOSES = "⚠️ This proposal loses to main"
#: Written by this command or by `textclf monitor`; never committed, allowed in the tree.
_OWN = ("reports/monitor", "reports/retrain")
#: What the retrain commit holds.
_COMMITTED = ("data.dvc", "params.yaml", "dvc.lock", "reports", "deploy/overlays")


class RetrainError(TextclfError):
    """A retrain proposal could not be made; the message names what and the fix."""


@dataclass(frozen=True)
class Candidates:
    """The labelled production rows not in the data yet, and what was dropped."""

    rows: pd.DataFrame  # text, label
    labelled: int  # requests with feedback
    with_text: int  # of those, with their text kept (traffic_log.text: full)
    unknown_label: int  # feedback labels outside data.labels
    stats: NewRowStats

    def counts(self) -> dict[str, int]:
        """The figures, for the JSON result and the PR body."""
        return {
            "labelled": self.labelled,
            "labelled_with_text": self.with_text,
            "unknown_label": self.unknown_label,
            "duplicates_removed": self.stats.duplicates_removed,
            "already_in_data": self.stats.already_present,
            "conflicting_rows_removed": self.stats.conflicting_rows_removed,
            "new_rows": self.stats.rows_added,
        }


def labelled_rows(requests: Sequence[Request], labels: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """``text``/``label`` (the user's) of the labelled requests that kept a non-blank text and
    whose label is one of ``labels``; and how many were left out for an unknown label."""
    keep, unknown = [], 0
    for r in requests:
        if r.truth is None or r.text is None or not r.text.strip():
            continue
        if r.truth not in labels:
            unknown += 1
            continue
        keep.append((r.text, r.truth))
    frame = pd.DataFrame(keep, columns=[TEXT, LABEL])
    return frame.assign(row=range(1, len(frame) + 1)), unknown


def existing_rows(root: Path, params: Params) -> pd.DataFrame:
    """Every row the data has now: ``data.path`` (all its rows) and the train-only files."""
    corpus = load_dataset(root, params.data)
    extra = load_train_only(root, params.data)
    return pd.concat([corpus[[TEXT, LABEL]], extra[[TEXT, LABEL]]], ignore_index=True)


def candidates(requests: Sequence[Request], root: Path, params: Params) -> Candidates:
    """The new rows ``requests`` bring to the data of ``root`` (see the module doc)."""
    labels = params.data.labels
    frame, unknown = labelled_rows(requests, labels)
    fresh, stats = new_rows(frame, existing_rows(root, params), params.prepare.conflicting_labels)
    return Candidates(
        rows=fresh[[TEXT, LABEL]],
        labelled=sum(r.truth is not None for r in requests),
        with_text=sum(r.truth is not None and bool(r.text and r.text.strip()) for r in requests),
        unknown_label=unknown,
        stats=stats,
    )


# --- the repository -------------------------------------------------------------------------


def _redact(text: str) -> str:
    """A remote URL's credentials (``scheme://<user and token>@host``) as ``***``."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1***@", text)


def _git(root: Path, *args: str, why: str, timeout: float | None = 600) -> str:
    done = run_git(root, *args, why=why, timeout=timeout)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).decode(errors="replace").strip()[-800:]
        raise RetrainError(_redact(f"`git {' '.join(args)}` failed ({why}): {said}"))
    return done.stdout.decode(errors="replace").strip()


def _dvc(root: Path, log: Path, *args: str, why: str, fix: str) -> None:
    """``dvc args``; its output is appended to ``log``; a failure names it and the fix."""
    done = run_dvc(root, *args)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as fh:
        fh.write(f"$ dvc {' '.join(args)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-1500:]
        raise RetrainError(
            f"`dvc {' '.join(args)}` failed ({why}), exit {done.returncode}: {tail}\n"
            f"(full output: {log}). Fix: {fix}"
        )


def _dirty(root: Path, allowed: Sequence[str]) -> list[str]:
    """Changed tracked files and untracked files, except under ``allowed``."""
    excludes = [f":(exclude){a}" for a in allowed]
    out = _git(
        root, "status", "--porcelain", "--untracked-files=all", "--", ".", *excludes,
        why="checking the working tree is clean",
    )  # fmt: skip
    return [line[3:] for line in out.splitlines() if line.strip()]


def _current(root: Path) -> tuple[str, str | None]:
    """HEAD's commit and its branch (None when detached)."""
    sha = _git(root, "rev-parse", "HEAD", why="naming HEAD")
    branch = run_git(root, "symbolic-ref", "--short", "-q", "HEAD", why="naming the branch")
    name = branch.stdout.decode().strip() if branch.returncode == 0 else None
    return sha, name or None


def _branch_exists(root: Path, branch: str, remote: str) -> str | None:
    """Where ``branch`` exists already: 'locally', 'on <remote>', or None."""
    if run_git(root, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", why="").returncode == 0:
        return "locally"
    listed = _git(
        root, "ls-remote", "--heads", remote, f"refs/heads/{branch}", why="checking the remote"
    )
    return f"on {_redact(remote)}" if listed else None


def _stamp(name: str, manifest: dict[str, Any], now: datetime) -> str:
    """The snapshot's UTC stamp: its directory's name, else its creation time, else now."""
    try:
        datetime.strptime(name, STAMP_FORMAT)
    except ValueError:
        pass
    else:
        return name
    created = manifest.get("created")
    if isinstance(created, str):
        try:
            return datetime.fromisoformat(created).astimezone(UTC).strftime(STAMP_FORMAT)
        except ValueError:
            pass
    return now.strftime(STAMP_FORMAT)


def _metrics_at(root: Path, rev: str) -> EvaluateMetrics | None:
    done = run_git(root, "show", f"{rev}:{METRICS}", why="reading main's metrics")
    if done.returncode != 0:
        return None
    return EvaluateMetrics.parse(json.loads(done.stdout), f"{rev}:{METRICS}")


def _add_train_only(params_file: Path, rel: str) -> None:
    """Append ``rel`` to data.train_only_paths with DVC's YAML round trip (layout kept)."""
    from dvc.utils.serialize import modify_yaml

    with modify_yaml(params_file) as doc:
        data = doc["data"]
        current = list(data.get("train_only_paths") or [])
        data["train_only_paths"] = [*current, rel]


def _test_split(root: Path, params: Params) -> pd.DataFrame:
    """The test split ``prepare`` makes of ``root``'s corpus with ``params``, in memory."""
    from textclf.stages.prepare import prepare_splits

    return prepare_splits(params, root).parts["test"][["row", TEXT, LABEL]]


@contextmanager
def _on_branch(root: Path, branch: str, start: str, back: str | None) -> Iterator[None]:
    """Work on a new ``branch`` from ``start``; on error, discard it and go back."""
    _git(root, "switch", "-q", "-c", branch, start, why=f"creating {branch}")
    try:
        yield
    except BaseException as err:
        try:
            _leave(root, back or start, detach=back is None)
        except TextclfError as also:
            raise RetrainError(
                f"{err}\nThen switching back failed too: {also}. Fix: `git switch -f "
                f"{back or start}` and `git branch -D {branch}`."
            ) from err
        run_git(root, "branch", "-D", branch, why="deleting the failed branch")
        raise
    _leave(root, back or start, detach=back is None)


def _leave(root: Path, target: str, *, detach: bool) -> None:
    """Back to ``target`` (tracked files as committed there), the outputs as its dvc.lock has."""
    args = ("switch", "-q", "--discard-changes", *(("--detach",) if detach else ()), target)
    _git(root, *args, why=f"switching back to {target}")
    # Best effort: main's outputs from the cache (absent ones are only reported by DVC).
    run_dvc(root, "checkout", "-q", "-f")


# --- the proposal ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """What ``propose`` did."""

    proposed: bool
    rows: int
    needed: int
    counts: dict[str, int]
    snapshot: str
    window: dict[str, str | None]
    branch: str | None = None
    commit: str | None = None
    data_file: str | None = None
    beats_main: bool | None = None
    test_split_unchanged: bool | None = None
    main: dict[str, float] | None = None
    proposal: dict[str, float] | None = None
    body: str | None = None
    title: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON result (the workflow reads ``proposed``, ``branch``, ``title``)."""
        return asdict(self)


def _scores(m: EvaluateMetrics | None) -> dict[str, float] | None:
    return None if m is None else {"macro_f1": m.macro_f1, "accuracy": m.accuracy}


def render_body(p: Proposal, monitor_md: str | None, train_rows: tuple[int, int] | None) -> str:
    """The pull request's body (Markdown)."""
    lines: list[str] = []
    if p.beats_main is False:
        lines += [f"## {LOSES}", "", "Its test macro-F1 is below main's: opened so that people "
                  "see it; do not merge it as it is.", ""]  # fmt: skip
    window = f"{p.window.get('first_ts') or '?'} .. {p.window.get('last_ts') or '?'}"
    c = p.counts
    lines += [
        f"# Retrain on {p.rows} labelled production rows",
        "",
        f"**Rows added:** {p.rows} new rows from snapshot `{p.snapshot}` (requests from {window}), "
        f"written to `{p.data_file}` and listed in `data.train_only_paths`: they join the "
        "**train split only**.",
        "",
        f"Of {c['labelled']} labelled requests, {c['labelled_with_text']} kept their text; "
        f"{c['already_in_data']} were already in the data, "
        f"{c['duplicates_removed'] - c['already_in_data']} were copies within the snapshot, "
        f"{c['conflicting_rows_removed']} had conflicting labels and {c['unknown_label']} a label "
        "outside `data.labels`.",
        "",
    ]
    if train_rows is not None:
        lines += [f"Train split: {train_rows[0]} → {train_rows[1]} rows.", ""]
    if p.test_split_unchanged:
        lines += ["**Test split: unchanged** (the same rows as main's), so the comparison below "
                  "is on the same examples.", ""]  # fmt: skip
    else:
        lines += ["**Test split: CHANGED** against main's: the comparison below is not on the "
                  "same examples.", ""]  # fmt: skip
    lines += ["## Against main (test split)", "", "| metric | main | this PR | Δ |",
              "| --- | --- | --- | --- |"]  # fmt: skip
    for label, key in (("test macro-F1", "macro_f1"), ("test accuracy", "accuracy")):
        new = (p.proposal or {}).get(key)
        old = (p.main or {}).get(key)
        cells = [
            f"{old:.4f}" if old is not None else "n/a",
            f"**{new:.4f}**" if new is not None else "n/a",
            f"{new - old:+.4f}" if new is not None and old is not None else "n/a",
        ]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines += ["", "## Monitor findings", ""]
    lines += [
        monitor_md.strip() if monitor_md else "No monitor report (reports/monitor/summary.md)."
    ]
    lines += ["", f"<sub>`textclf retrain propose`, branch `{p.branch}`.</sub>", ""]
    return "\n".join(lines)


def propose(
    root: Path,
    traffic: str | Path,
    *,
    remote: str,
    body: Path = BODY,
    result: Path = RESULT,
    now: datetime | None = None,
) -> Proposal:
    """Propose a retrain on ``traffic``'s new labelled rows (see the module doc)."""
    root = Path(root).resolve()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    body = body if body.is_absolute() else root / body
    result = result if result.is_absolute() else root / result
    params = load_params(root / "params.yaml")
    with tempfile.TemporaryDirectory(prefix="textclf-retrain-") as tmp:
        snapshot, name = locate(str(traffic), Path(tmp))  # a prefix or URL: fetched, not imported
        requests, manifest = load_requests(snapshot, labelled_only=True)
    found = candidates(requests, root, params)
    needed = params.monitor.retrain_min_labels
    stamp = _stamp(name, manifest, now)
    window = {k: manifest.get(k) for k in ("first_ts", "last_ts")}
    base = Proposal(False, len(found.rows), needed, found.counts(), stamp, window)
    if len(found.rows) < needed:
        io.write_json(result, base.to_json())
        return base

    outs = (_rel(p, root) for p in (body.parent, result.parent))
    allowed = [*_OWN, *(r for r in outs if r not in (None, "."))]
    branch = f"retrain/{now:%Y-%m-%d}"
    rel = f"{PRODUCTION_DIR}/{stamp}.csv"
    log = result.parent / "dvc.log"
    _preflight(root, params, allowed, branch, remote, rel, log)
    sha, back = _current(root)
    main_metrics = _metrics_at(root, sha)
    main_test = _rows_of(_test_split(root, params))
    main_train = _train_rows(root, sha)
    with _on_branch(root, branch, sha, back):
        _retrain(root, params, found.rows, rel, log)
        unchanged = main_test == _rows_of(pd.read_parquet(root / TEST_SPLIT))
        new_metrics = EvaluateMetrics.read(root / METRICS)
        new_train = _train_rows(root, None)
        title = f"Retrain on {len(found.rows)} labelled production rows (snapshot {stamp})"
        message = (
            f"{title}\n\nAdds {len(found.rows)} new labelled production rows (requests "
            f"{window['first_ts']} .. {window['last_ts']}) to the train split only: {rel}, "
            "listed in data.train_only_paths. The test split is "
            f"{'unchanged' if unchanged else 'CHANGED'}.\n"
        )
        commit = _commit_and_push(root, allowed, message, remote, branch)
    done = Proposal(
        True, len(found.rows), needed, found.counts(), stamp, window,
        branch=branch, commit=commit, data_file=rel,
        beats_main=None if main_metrics is None else new_metrics.macro_f1 >= main_metrics.macro_f1,
        test_split_unchanged=unchanged, main=_scores(main_metrics),
        proposal=_scores(new_metrics), body=str(body), title=title,
    )  # fmt: skip
    monitor_md = root / MONITOR_MD
    text = monitor_md.read_text(encoding="utf-8") if monitor_md.is_file() else None
    train = (main_train, new_train) if main_train is not None and new_train is not None else None
    io.write_text(body, render_body(done, text, train))
    io.write_json(result, done.to_json())
    return done


def _preflight(
    root: Path, params: Params, allowed: list[str], branch: str, remote: str, rel: str, log: Path
) -> None:
    """Fail before touching anything: a dirty tree, an existing branch or file, stale data/."""
    dirty = _dirty(root, allowed)
    if dirty:
        raise RetrainError(
            f"the working tree of {root} is not clean ({', '.join(dirty[:8])}"
            f"{' ...' if len(dirty) > 8 else ''}). Fix: commit or remove those changes, then "
            "run it again from main."
        )
    where = _branch_exists(root, branch, remote)
    if where:
        raise RetrainError(
            f"branch {branch} exists already ({where}). Fix: merge or close that proposal and "
            f"delete the branch (`git branch -D {branch}`; `git push {_redact(remote)} --delete "
            f"{branch}`), or run it tomorrow."
        )
    if (root / rel).exists() or rel in params.data.train_only_paths:
        raise RetrainError(
            f"{rel} exists already: that snapshot was proposed before. Fix: pass a newer "
            "snapshot (--traffic)."
        )
    log.unlink(missing_ok=True)
    _dvc(root, log, "status", "data.dvc", why="checking data/ matches data.dvc",
         fix="`dvc pull data.dvc` (or `dvc checkout data.dvc`) first.")  # fmt: skip


def _retrain(root: Path, params: Params, rows: pd.DataFrame, rel: str, log: Path) -> None:
    """Write the rows, list them in params.yaml, track, reproduce, push, write the overlays."""
    from textclf.release import flow

    data = params.data
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        rows.rename(columns={TEXT: data.text_column, LABEL: data.label_column}).to_csv(
            target, index=False, encoding="utf-8"
        )
        _add_train_only(root / "params.yaml", rel)
        load_params(root / "params.yaml")  # still valid
        for args, why, fix in _STEPS:
            _dvc(root, log, *args, why=why, fix=fix)
        flow.write_manifests(root, verify=True)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


_STEPS = (
    (("add", "-q", "data"), "tracking the new rows", "check data/ and data.dvc, then rerun."),
    (
        ("repro",),
        "reproducing the pipeline on the new rows",
        "see the stage's error; `dvc repro` on main shows whether it fails there too.",
    ),
    (
        ("push",),
        "sending data and outputs to the default DVC remote",
        "give the remote's credentials (or set a default: `dvc remote default <name>`).",
    ),
)


def _commit_and_push(root: Path, allowed: list[str], message: str, remote: str, branch: str) -> str:
    """Commit what the retrain changed (not the monitor's or this command's files), push."""
    _git(root, "add", "-A", "--", *_COMMITTED, why="staging the retrain")
    # Unstaged again, not excluded from `add`: an exclude pathspec on a path .gitignore covers
    # (as this repository's does) makes `git add` fail.
    _git(root, "reset", "-q", "--", *allowed, why="leaving the monitor's files out")
    _git(root, "commit", "-q", "-m", message, why="committing the retrain (is a git user set?)")
    commit = _git(root, "rev-parse", "HEAD", why="naming the commit")
    # With TEXTCLF_PUSH_TOKEN set, a credential helper answers with it: its value never reaches
    # a command line (the workflow's remote URL carries no token).
    push = push_args(remote, branch, with_token=bool(os.environ.get(PUSH_TOKEN_ENV)))
    _git(root, *push, why=f"pushing {branch} (credentials for the remote?)", timeout=900)
    return commit


def _rows_of(frame: pd.DataFrame) -> list[tuple[int, str, str]]:
    return [
        (int(r), str(t), str(lab))
        for r, t, lab in frame[["row", TEXT, LABEL]].itertuples(index=False)
    ]


def _rel(path: Path, root: Path) -> str | None:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def _train_rows(root: Path, rev: str | None) -> int | None:
    """The train split's rows in reports/prepare/summary.json (at ``rev``, else the tree)."""
    rel = "reports/prepare/summary.json"
    if rev is None:
        path = root / rel
        raw = io.read_json(path) if path.is_file() else None
    else:
        shown = run_git(root, "show", f"{rev}:{rel}", why="reading main's data summary")
        raw = json.loads(shown.stdout) if shown.returncode == 0 else None
    try:
        return int(raw["splits"]["train"]["rows"]) if raw else None
    except (KeyError, TypeError, ValueError):
        return None
