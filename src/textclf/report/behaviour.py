"""Behaviour tests in the review: the BASE's suite, run by the judge on the PR's exported graph.

The PR's own ``reports/behaviour/metrics.json`` holds the PR's suite on the PR's model, written
by the PR's code; the gate does not judge with it. The judge reads ``behaviour.yaml`` at the base
commit and runs it on the export under review, so a PR cannot pass by dropping or loosening the
tests it fails: a test "newly" fails when the PR's model is below the base suite's threshold
while the base's model (its committed metrics) met it. Tests the base's model failed too are a
non-blocking warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textclf.behaviour.render import cell, failure_line, rate, status
from textclf.behaviour.runner import run_on_export
from textclf.behaviour.suite import parse_suite, suite_digest
from textclf.config.behaviour import BehaviourParams
from textclf.errors import TextclfError
from textclf.outputs.behaviour import BehaviourReport
from textclf.repo_paths import RepoPaths
from textclf.report.gate import Check
from textclf.report.markdown import Table, esc
from textclf.report.sources import Snapshot, sources

KEY = "behaviour"
EXPORT_DIR = "artifacts/onnx"  # dvc.lock's path of the export (the stage's output)
NAME = "behaviour tests (base suite)"
KNOWN = "behaviour tests the base's model fails too"


def _settings(base: Snapshot) -> BehaviourParams:
    raw = base.yaml("params")
    section = raw.get("behaviour") if isinstance(raw, dict) else None
    return (
        BehaviourParams.model_validate(section) if isinstance(section, dict) else BehaviourParams()
    )


def judge_behaviour(root: Path, base: Snapshot, new: Snapshot) -> None:
    """Run the base's suite on ``root``'s export; store the result (or why not) on ``new``.

    Nothing is stored when the base has no suite (the check then says it is not gated).
    """
    text = base.text("behaviour_suite")
    if text is None:
        return
    suite_path = sources()["behaviour_suite"].path
    onnx_dir = RepoPaths(root).onnx_dir
    try:
        cfg = _settings(base)
        reused = _base_results_for_same_export(base, new, suite_digest(text), cfg.variant)
        if reused is not None:
            new.judged[KEY] = reused
            return
        if not onnx_dir.is_dir():
            raise TextclfError(
                f"missing {onnx_dir.relative_to(root)}: the base's behaviour tests run on "
                "the exported graph. Fix: `dvc checkout artifacts/onnx` (or `dvc repro export`)"
            )
        report = run_on_export(text, f"{base.label}:{suite_path}", onnx_dir, cfg)
    except (TextclfError, ValueError) as err:
        new.judged[KEY] = f"the base's behaviour tests could not run: {err}"
        return
    new.judged[KEY] = BehaviourReport.model_validate(report)


def export_md5(snapshot: Snapshot) -> str | None:
    """The md5 a snapshot's dvc.lock records for the export directory (None: not recorded)."""
    lock = snapshot.yaml("dvc_lock")
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for entry in (stages or {}).values():
        for out in (entry or {}).get("outs") or []:
            if isinstance(out, dict) and str(out.get("path", "")).rstrip("/") == EXPORT_DIR:
                return str(out["md5"]) if out.get("md5") else None
    return None


def _base_results_for_same_export(
    base: Snapshot, new: Snapshot, digest: str, variant: str
) -> BehaviourReport | None:
    """The base's committed results, when they are what running its suite here would give.

    That is when this workspace's dvc.lock records the base's export (what ships is what
    dvc.lock records: the release check proves the files match it, so the PR ships the base's
    graph) and the base's results are of its own suite on the same variant. The results are read
    from the base's revision, never from the workspace.
    """
    md5 = export_md5(base)
    if md5 is None or export_md5(new) != md5:
        return None
    report = base.report(KEY, BehaviourReport)
    if report is None or report.suite_sha256 != digest or report.model.get("variant") != variant:
        return None
    return report


def _base_results(base: Snapshot) -> dict[str, Any]:
    report = base.report(KEY, BehaviourReport)
    return dict(report.tests) if report is not None else {}


def check_behaviour(new: Snapshot, base: Snapshot) -> list[Check]:
    """No test of the base's suite newly below its threshold; known failures as a warning."""
    judged = new.judged.get(KEY)
    if base.text("behaviour_suite") is None:
        return [
            Check(
                NAME,
                True,
                f"not gated: {base.label} has no {sources()['behaviour_suite'].path} (this PR's "
                "suite is judged once it is merged)",
                blocking=False,
            )
        ]
    if not isinstance(judged, BehaviourReport):
        why = judged if isinstance(judged, str) else "the judge did not run the base's suite"
        return [Check(NAME, False, why)]
    before = _base_results(base)
    newly: list[str] = []
    known: list[str] = []
    skipped: list[str] = []
    for name, result in judged.tests.items():
        if not result.applicable:
            skipped.append(name)
            continue
        if result.ok:
            continue
        old = before.get(name)
        line = (
            f"{name} {result.pass_rate:.1%} < {result.min_pass_rate:.0%}"
            f" (base's model: {rate(old.model_dump()) if old else 'not measured'})"
        )
        (known if old is not None and old.ok is False else newly).append(line)
    ran = len(judged.tests) - len(skipped)
    detail = (
        f"{len(newly)} of {ran} tests newly below their threshold: {'; '.join(newly)}"
        if newly
        else f"no test of {ran} newly below its threshold"
    )
    if skipped:
        detail += f"; not applicable to this model's labels: {', '.join(skipped)}"
    checks = [Check(NAME, not newly, detail, value=float(len(newly)), threshold=0.0)]
    if known:
        checks.append(Check(KNOWN, False, "; ".join(known), blocking=False))
    return checks


def _suite_changes(new: Snapshot, base: Snapshot) -> list[str]:
    """What the PR changes in behaviour.yaml (it applies after the merge)."""
    old_text, new_text = base.text("behaviour_suite"), new.text("behaviour_suite")
    if old_text == new_text or new_text is None:
        return []
    path = sources()["behaviour_suite"].path
    try:
        mine = {t.name: t for t in parse_suite(new_text, path).tests}
        theirs = {t.name: t for t in parse_suite(old_text, path).tests} if old_text else {}
    except TextclfError as err:
        return [f"This PR's {path} is invalid: {esc(str(err), 300)}"]
    parts = []
    if added := sorted(set(mine) - set(theirs)):
        parts.append(f"adds {', '.join(added)}")
    if dropped := sorted(set(theirs) - set(mine)):
        parts.append(f"drops {', '.join(dropped)}")
    if changed := sorted(n for n in set(mine) & set(theirs) if mine[n] != theirs[n]):
        parts.append(f"changes {', '.join(changed)}")
    what = "; ".join(parts) or "changes the vocabulary, texts or sampling"
    return [
        f"This PR's `{path}` {what}. The gate judges with the base's copy; the change takes "
        "effect after the merge."
    ]


def behaviour_section(ctx: Any) -> list[str]:
    """Per test of the base's suite: threshold, base model, this PR's model (and failures)."""
    new, base = ctx.new, ctx.base
    judged = new.judged.get(KEY)
    lines = ["### Behaviour tests", ""]
    if not isinstance(judged, BehaviourReport):
        own = new.report(KEY, BehaviourReport)
        if base.text("behaviour_suite") is None and own is None:
            return []
        why = judged if isinstance(judged, str) else f"{base.label} has no behaviour suite"
        lines.append(f"The base's suite was not run: {esc(why, 300)}.")
        return [*lines, "", *_suite_changes(new, base)]
    before = _base_results(base)
    table = Table(["test", "kind", "threshold", base.label, "this PR", ""])
    for name, result in judged.tests.items():
        old = before.get(name)
        table.rows.append(
            [
                esc(name),
                result.type,
                f"{result.min_pass_rate:.0%}",
                rate(old.model_dump() if old else None),
                rate(result.model_dump()),
                status(result.model_dump()),
            ]
        )
    lines += [
        f"The base's suite ({judged.summary.cases} cases) on this PR's "
        f"{judged.model['variant']} graph {judged.model['version']}:",
        "",
        *table.render(ctx.max_rows, "tests"),
    ]
    failing = [(n, r) for n, r in judged.tests.items() if r.ok is False and r.failures]
    if failing:
        lines += ["", "Failing cases of the tests below threshold (worst first):", ""]
        for name, result in failing:
            lines.append(f"- **{esc(name)}**:")
            lines += [f"  - {failure_line(result.model_dump(), f)}" for f in result.failures[:3]]
    for name, result in judged.tests.items():
        if not result.applicable:
            lines += ["", f"- **{esc(name)}** does not apply: {cell(result.reason or '', 200)}"]
    changes = _suite_changes(new, base)
    return [*lines, *(["", *changes] if changes else [])]
