"""Build the PR review: resolve the base, read both sides, run the gate, render under the cap."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from textclf import io
from textclf.report.behaviour import judge_behaviour
from textclf.report.gate import Verdict, evaluate_gate
from textclf.report.policy import policy_for
from textclf.report.sections import Context, render
from textclf.report.sources import (
    Snapshot,
    current_branch,
    resolve_base,
    revision_snapshot,
    workspace_snapshot,
)

# GitHub rejects comments over 65,536 characters; CML adds a watermark, so keep a margin.
GITHUB_COMMENT_LIMIT = 65_536
DEFAULT_MAX_CHARS = 60_000
# Rows per table: all of them first, then fewer until the report fits.
ROW_BUDGETS: tuple[int | None, ...] = (None, 60, 30, 15, 8, 4, 2)
CUT_NOTE = (
    "\n\n_… the rest of this report was cut to stay under GitHub's comment size limit; "
    "the full files are in the workflow artifacts._\n"
)


@dataclass(frozen=True)
class Review:
    """The gate verdict and the Markdown report, with the two sides they compare."""

    verdict: Verdict
    markdown: str
    new: Snapshot
    base: Snapshot
    rows_per_table: int | None


def load_sides(root: Path, base: str | None = None) -> tuple[Snapshot, Snapshot]:
    """The workspace and the base revision's committed files (see ``resolve_base``)."""
    name, commit = resolve_base(root, base)
    return workspace_snapshot(root), revision_snapshot(root, name, commit)


def judge(root: Path, base: str | None = None) -> tuple[Verdict, Snapshot, Snapshot]:
    """The gate verdict of the workspace against ``base``, with the base's thresholds."""
    new, old = load_sides(root, base)
    judge_behaviour(root, old, new)  # the base's suite on this export: not a file the PR wrote
    return evaluate_gate(policy_for(old, new), new, old), new, old


def cap(candidates: list[tuple[int | None, str]], max_chars: int) -> tuple[str, int | None]:
    """The first candidate (largest row budget first) that fits, else the last one cut hard."""
    for rows, text in candidates:
        if len(text) <= max_chars:
            return text, rows
    rows, text = candidates[-1]
    return truncate(text, max_chars), rows


def truncate(text: str, max_chars: int) -> str:
    """Cut ``text`` at a line boundary so that it and the note fit; close an open code fence."""
    budget = max_chars - len(CUT_NOTE) - 8
    cut = text[:budget]
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    if cut.count("```") % 2:
        cut += "\n```"
    return cut + CUT_NOTE


def build_review(
    root: Path,
    base: str | None = None,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    env: Mapping[str, str] | None = None,
) -> Review:
    """Compare the workspace with ``base`` and render the report, cutting tables to fit."""
    if max_chars < len(CUT_NOTE) + 200:
        raise ValueError(
            f"max_chars={max_chars} is too small for a report; use at least {len(CUT_NOTE) + 200}"
        )
    verdict, new, old = judge(root, base)
    environ = dict(os.environ if env is None else env)
    head = environ.get("GITHUB_HEAD_REF") or current_branch(root) or "this branch"
    candidates = []
    for rows in ROW_BUDGETS:
        text = render(Context(new, old, verdict, rows, environ, head))
        candidates.append((rows, text))
        if len(text) <= max_chars:
            break
    markdown, rows = cap(candidates, max_chars)
    return Review(verdict, markdown, new, old, rows)


def write_review(review: Review, out: Path, gate_json: Path) -> None:
    """Write the report and the verdict, each atomically."""
    io.write_text(out, review.markdown)
    io.write_json(gate_json, review.verdict.to_json())
