"""The replay in the PR review: the report section rendered from a real replay summary, and the
gate's two replay checks (changed answers, live accuracy) with the base's thresholds."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.production.conftest import CHANGED, PRODUCTION_ACCURACY, N, ReplayCase
from textclf.config.gate import GateParams
from textclf.outputs.replay import ReplaySummary
from textclf.report.gate import Check, Verdict, evaluate_gate
from textclf.report.markdown import esc
from textclf.report.policy import policy_for
from textclf.report.sections import SECTIONS, Context, render, replay_section
from textclf.report.sources import Snapshot

CHANGES = "changed production answers"
LIVE = "live accuracy vs production"


def gate_yaml(**gate: Any) -> str:
    """A gate.yaml with the defaults and ``gate`` keys overridden."""
    return yaml.safe_dump(GateParams(**gate).model_dump(), sort_keys=False)


def sides(
    summary: str | None, base_gate: str, new_gate: str | None = None
) -> tuple[Snapshot, Snapshot]:
    """The workspace (with ``summary`` as reports/replay/summary.json) and the base."""
    new = Snapshot("workspace", None, {"replay": summary, "gate": new_gate or base_gate})
    base = Snapshot("main", "0123456789abcdef", {"gate": base_gate})
    return new, base


def verdict(summary: str | None, base_gate: str, new_gate: str | None = None) -> Verdict:
    new, base = sides(summary, base_gate, new_gate)
    return evaluate_gate(policy_for(base, new), new, base)


def check(v: Verdict, name: str) -> Check:
    found = [c for c in v.checks if c.name == name]
    assert len(found) == 1, [c.name for c in v.checks]
    return found[0]


@pytest.fixture(scope="module")
def summary_json(replay_case: ReplayCase) -> str:
    """The real replay's summary.json text (25% changed, feedback on 30 requests)."""
    return replay_case.summary.model_dump_json(indent=2)


def edited(text: str, **changes: Any) -> str:
    data = json.loads(text)
    data.update(changes)
    return json.dumps(data)


# --- the report section -------------------------------------------------------------------------


def test_the_section_shows_the_replay_with_its_chart_matrix_and_live_accuracy(
    replay_case: ReplayCase, summary_json: str
) -> None:
    new, base = sides(summary_json, gate_yaml())
    ctx = Context(new, base, evaluate_gate(policy_for(base, new), new, base), None, {})
    lines = replay_section(ctx)
    md = "\n".join(lines)
    s = replay_case.summary

    assert lines[0] == f"### On {N} recent production requests"
    assert f"**25.0% of answers change** ({CHANGED} of {N} replayed requests)." in md
    # The Mermaid chart: one bar per changed (production -> new) pair, the counts of the matrix.
    start = lines.index("```mermaid")
    chart = lines[start : lines.index("```", start + 1) + 1]
    assert chart[1] == "xychart-beta"
    pairs = sorted(
        ((n, p, m) for p, row in s.changed_matrix.items() for m, n in row.items() if m != p),
        reverse=True,
    )
    bars = next(line for line in chart if line.strip().startswith("bar "))
    assert bars.strip() == "bar [" + ", ".join(str(n) for n, _, _ in pairs) + "]"
    for _, p, m in pairs:
        assert f'"{p} to {m}"' in md
    # The matrix, cell by cell: changed answers in bold.
    labels = sorted({m for row in s.changed_matrix.values() for m in row})
    assert "| production ↓ / this PR → | " + " | ".join(labels) + " |" in lines
    for p, row in s.changed_matrix.items():
        cells = [f"**{row[m]}**" if m != p and row.get(m) else str(row.get(m, 0)) for m in labels]
        assert f"| {p} | " + " | ".join(cells) + " |" in lines, p
    # Live accuracy on the labelled requests, both models and the delta.
    assert f"On the {len(replay_case.truth)} requests users labelled" in md
    assert f"| production (recorded answers) | {PRODUCTION_ACCURACY:.4f} |" in md
    candidate = s.feedback.models["candidate"].accuracy  # type: ignore[union-attr]
    assert f"| this PR | {candidate:.4f} |" in md
    assert "| Δ (this PR − production) | +" in md
    assert "<summary>Changed answers per slice</summary>" in md
    assert "<summary>Most confident changed answers</summary>" in md
    assert esc(s.examples[0].text) in md  # the text, escaped for GitHub


def test_the_section_is_in_the_report_and_absent_without_a_replay(summary_json: str) -> None:
    assert replay_section in SECTIONS
    new, base = sides(summary_json, gate_yaml())
    ctx = Context(new, base, evaluate_gate(policy_for(base, new), new, base), None, {})
    report = render(ctx)
    assert f"### On {N} recent production requests" in report and "```mermaid" in report

    new, base = sides(None, gate_yaml())
    ctx = Context(new, base, evaluate_gate(policy_for(base, new), new, base), None, {})
    assert replay_section(ctx) == []
    assert "recent production requests" not in render(ctx)


def test_an_invalid_summary_is_shown_as_unavailable_with_the_fix(summary_json: str) -> None:
    new, base = sides(edited(summary_json, changed_share="a quarter"), gate_yaml())
    ctx = Context(new, base, evaluate_gate(policy_for(base, new), new, base), None, {})
    lines = replay_section(ctx)
    assert lines[0] == "### Production replay"
    assert "Not available:" in lines[2] and esc("changed_share") in lines[2]
    assert "textclf replay" in lines[2]


# --- the gate -----------------------------------------------------------------------------------


def test_with_the_keys_null_the_gate_has_no_replay_checks(summary_json: str) -> None:
    for summary in (summary_json, None):  # with a summary, and without one
        names = {c.name for c in verdict(summary, gate_yaml()).checks}
        assert CHANGES not in names and LIVE not in names
    # The control: the same sides with the keys set do have them.
    names = {
        c.name
        for c in verdict(
            summary_json, gate_yaml(max_replay_changed_share=0.5, min_live_accuracy_delta=-1.0)
        ).checks
    }
    assert {CHANGES, LIVE} <= names


@pytest.mark.parametrize(
    ("limit", "passed"), [(0.1, False), (0.24, False), (0.25, True), (0.5, True)]
)
def test_the_changed_share_is_held_to_the_limit(
    summary_json: str, limit: float, passed: bool
) -> None:
    c = check(verdict(summary_json, gate_yaml(max_replay_changed_share=limit)), CHANGES)
    assert c.passed is passed and c.blocking
    assert c.value == 0.25 and c.threshold == limit
    assert c.detail == f"25.0% of {N} recorded answers change (at most {limit:.1%})"


def test_the_base_limit_applies_not_the_one_the_pr_sets(summary_json: str) -> None:
    v = verdict(
        summary_json,
        base_gate=gate_yaml(max_replay_changed_share=0.1),
        new_gate=gate_yaml(max_replay_changed_share=None),
    )
    assert not check(v, CHANGES).passed and not v.passed
    assert f"{CHANGES}: " in "\n".join(v.to_json()["failures"])


@pytest.mark.parametrize(("limit", "passed"), [(-0.01, True), (0.0, True), (0.5, False)])
def test_live_accuracy_is_held_to_the_limit(
    replay_case: ReplayCase, summary_json: str, limit: float, passed: bool
) -> None:
    c = check(verdict(summary_json, gate_yaml(min_live_accuracy_delta=limit)), LIVE)
    scores = replay_case.summary.feedback
    assert scores is not None
    assert c.passed is passed and c.value == pytest.approx(scores.accuracy_delta)
    assert c.value == pytest.approx(2 / 3 - PRODUCTION_ACCURACY)
    assert f"on {scores.requests} labelled requests" in c.detail


def test_live_accuracy_without_feedback_fails_with_the_fix(summary_json: str) -> None:
    no_feedback = edited(summary_json, feedback=None, production=None, labelled=0)
    ReplaySummary.parse(json.loads(no_feedback), "edited")  # still a valid summary
    c = check(verdict(no_feedback, gate_yaml(min_live_accuracy_delta=-0.01)), LIVE)
    assert not c.passed and c.blocking
    assert "0 labelled request(s)" in c.detail
    assert "collect feedback (POST /feedback) or set min_live_accuracy_delta to null" in c.detail


def test_changed_share_without_any_text_fails_with_the_fix(summary_json: str) -> None:
    no_text = edited(summary_json, replayed=0, changed=0, changed_share=None, changed_matrix={})
    c = check(verdict(no_text, gate_yaml(max_replay_changed_share=0.5)), CHANGES)
    assert not c.passed
    assert "nothing was replayed" in c.detail and "serve.traffic_log.text keep" in c.detail


def test_a_missing_summary_fails_each_check_that_is_on_naming_the_fix() -> None:
    v = verdict(None, gate_yaml(max_replay_changed_share=0.1, min_live_accuracy_delta=-0.01))
    for name in (CHANGES, LIVE):
        c = check(v, name)
        assert not c.passed and c.blocking
        assert "no traffic snapshot was replayed (reports/replay/summary.json)" in c.detail
        assert "textclf replay" in c.detail
    assert not v.passed


def test_an_unreadable_summary_fails_naming_the_field_and_the_fix(summary_json: str) -> None:
    v = verdict(
        edited(summary_json, changed_share="a quarter"), gate_yaml(max_replay_changed_share=0.5)
    )
    c = check(v, CHANGES)
    assert not c.passed and "changed_share" in c.detail and "textclf replay" in c.detail
