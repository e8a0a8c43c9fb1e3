"""Data expectations in the review: the PR's measured data figures, judged with the BASE's bounds.

``prepare`` checks a PR's data with the PR's own ``data.expectations.yaml`` and records the
figures it measured in ``reports/prepare/summary.json``. The gate judges those figures again with
the base revision's copy of the file, so a PR cannot pass by loosening its own expectations; a
change to the file is listed with the other gate changes and takes effect once it is merged.
Only where the base has no expectations file (the first one) does the PR's own apply, and the
review says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textclf.config.expectations import (
    EXPECTATIONS_FILE,
    DataExpectations,
    Rule,
    parse_expectations,
)
from textclf.errors import ConfigError
from textclf.outputs.prepare import DataMeasures, PrepareSummary
from textclf.report.gate import Check, unavailable
from textclf.report.markdown import Table, code, esc, fmt
from textclf.report.policy import Change
from textclf.report.sources import Snapshot, flatten, sources

if TYPE_CHECKING:
    from textclf.report.sections import Context

KEY = "expectations"
NAME = "data expectations (base bounds)"
#: The fix of a failed check: the PR's own copy applies only once it is merged.
GATE_FIX = (
    "fix the data; a change to data.expectations.yaml takes effect only after it is merged "
    "(CODEOWNERS review), so merge that change first"
)


@dataclass(frozen=True)
class Bounds:
    """The expectations a review applies, and whose they are."""

    expectations: DataExpectations
    source: str  # e.g. "main: data.expectations.yaml"
    note: str | None = None  # why they are not the base's


def bounds_for(base: Snapshot, new: Snapshot) -> Bounds | str | None:
    """The base's expectations (the workspace's only when the base has none); the error text
    when the file in force is invalid; None when neither side has the file."""
    path = sources()[KEY].path
    side, note = base, None
    if base.text(KEY) is None:
        if new.text(KEY) is None:
            return None
        side = new
        note = (
            f"first data expectations: {base.label} has no {path}, so this PR's own apply "
            "(later PRs are judged with the merged ones)"
        )
    source = f"{side.label}: {path}"
    raw = side.yaml(KEY)
    if raw is None and side.text(KEY):
        return f"{source} is not valid YAML"
    try:
        return Bounds(parse_expectations(raw, source), source, note)
    except ConfigError as err:
        return str(err)


def expectation_changes(base: Snapshot, new: Snapshot) -> list[Change]:
    """The keys of ``data.expectations.yaml`` the workspace changes (they apply after merge)."""
    old, cur = base.yaml(KEY), new.yaml(KEY)
    if not isinstance(old, dict):
        return []  # nothing in force to change (the first file applies as it is, and says so)
    flat_old, flat_new = flatten(old), flatten(cur if isinstance(cur, dict) else {})
    return [
        Change(f"{EXPECTATIONS_FILE}: {key}", flat_old.get(key), flat_new.get(key))
        for key in sorted(set(flat_old) | set(flat_new))
        if flat_old.get(key) != flat_new.get(key)
    ]


def _measures(snapshot: Snapshot) -> DataMeasures | str:
    """The data figures ``prepare`` recorded on ``snapshot``; or why there are none."""
    summary = snapshot.report("prepare", PrepareSummary)
    if summary is None:
        return snapshot.report_error("prepare") or unavailable(snapshot, "prepare")
    if summary.expectations is None:
        return (
            f"{sources()['prepare'].path} has no data expectation figures (written by code from "
            f"before {EXPECTATIONS_FILE}): rerun `dvc repro prepare`"
        )
    return summary.expectations.measured


def _rules(bounds: Bounds, measured: DataMeasures) -> list[Rule]:
    return bounds.expectations.rules(list(measured.class_rows))


def _failure(rule: Rule, value: float | None) -> str:
    shown = "not measured" if value is None else f"{value:.4g}"
    return f"{rule.name} {shown} ({rule.bound_text()})"


def check_expectations(new: Snapshot, base: Snapshot) -> Check | None:
    """The PR's measured data figures meet the base's ``data.expectations.yaml``.

    None when neither side has the file (nothing to judge with).
    """
    bounds = bounds_for(base, new)
    if bounds is None:
        return None
    if isinstance(bounds, str):
        return Check(NAME, False, f"{bounds}. Fix: correct it on {base.label} first")
    measured = _measures(new)
    if isinstance(measured, str):
        return Check(NAME, False, measured)
    rules = _rules(bounds, measured)
    note = f"{bounds.note}; " if bounds.note else ""
    failed = [(r, v) for r in rules if not r.passes(v := measured.value(r.measure, r.label))]
    if failed:
        listed = "; ".join(_failure(r, v) for r, v in failed)
        return Check(
            NAME,
            False,
            f"{note}{len(failed)} of {len(rules)} expectations of {bounds.source} fail on this "
            f"PR's data: {listed}. Fix: {GATE_FIX}",
            value=float(len(failed)),
        )
    return Check(
        NAME,
        True,
        f"{note}all {len(rules)} expectations of {bounds.source} hold on this PR's data",
        value=0.0,
    )


def _shown(rule: Rule, value: float | None) -> str:
    """A figure as the report writes numbers; row counts as whole numbers."""
    return fmt(int(value) if rule.measure == "class_rows" and value is not None else value)


def expectations_section(ctx: Context) -> list[str]:
    """Base vs PR measured figures per expectation, the bounds in force, pass or fail."""
    title = ["### Data expectations", ""]
    bounds = bounds_for(ctx.base, ctx.new)
    if bounds is None:
        return []
    if isinstance(bounds, str):
        return [*title, f"Not judged: {esc(bounds, 300)}."]
    measured = _measures(ctx.new)
    if isinstance(measured, str):
        return [*title, f"Not available: {esc(measured, 300)}."]
    old = _measures(ctx.base)
    old_measured = old if isinstance(old, DataMeasures) else None
    table = Table(["expectation", "bound", "base", "this PR", ""], align="llrrl")
    failed = 0
    for rule in _rules(bounds, measured):
        value = measured.value(rule.measure, rule.label)
        before = old_measured.value(rule.measure, rule.label) if old_measured else None
        passed = rule.passes(value)
        failed += not passed
        shown = (_shown(rule, before), f"**{_shown(rule, value)}**", "✅" if passed else "❌")
        table.rows.append([code(rule.name), esc(rule.bound_text()), *shown])
    lines = [
        *title,
        f"Bounds: {code(bounds.source)} (a PR cannot loosen its own; a change to "
        f"{code(EXPECTATIONS_FILE)} is listed at the top and applies after merge). "
        + (f"{failed} of {len(table.rows)} fail." if failed else f"All {len(table.rows)} hold."),
    ]
    if bounds.note:
        lines += ["", f"> **Note:** {esc(bounds.note)}"]
    if old_measured is None:
        lines += [
            "",
            f"{code(ctx.base.label)} has no measured figures to compare with: {esc(old)}.",
        ]
    return [*lines, "", *table.render(ctx.max_rows, "expectations")]
