"""Markdown of behaviour results: the stage's summary.md, the model card and the PR report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_KIND = {"mft": "minimum functionality", "inv": "invariance", "dir": "directional"}


def cell(text: str, limit: int = 90) -> str:
    """A text cut to ``limit`` characters, safe inside a Markdown table cell."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'").replace("<", "&lt;")


def rate(result: Mapping[str, Any] | None) -> str:
    """``93.0% (186/200)``, ``n/a`` for a test that did not run, ``—`` for no result."""
    if result is None:
        return "—"
    if not result.get("applicable"):
        return "n/a"
    return f"{result['pass_rate']:.1%} ({result['passed']}/{result['cases']})"


def status(result: Mapping[str, Any] | None) -> str:
    """✅ at or above the threshold, ❌ below it, ➖ not applicable or absent."""
    if result is None or result.get("ok") is None:
        return "➖"
    return "✅" if result["ok"] else "❌"


def failure_line(test: Mapping[str, Any], failure: Mapping[str, Any]) -> str:
    """One failing case: the text(s) and what the model answered."""
    if "changed" not in failure:
        return (
            f"`{cell(failure['text'])}` → {failure['prediction']} "
            f"({failure.get('confidence', 0):.2f})"
        )
    line = (
        f"`{cell(failure['text'], 70)}` → {failure['prediction']}; "
        f"`{cell(failure['changed'], 70)}` → {failure['changed_prediction']}"
    )
    if "p_before" in failure:
        line += f" (p {failure['p_before']:.2f} → {failure['p_after']:.2f})"
    return line


def failures_block(name: str, test: Mapping[str, Any], shown: int) -> list[str]:
    """A few failing cases of one test, as list items."""
    items = test.get("failures") or []
    if not items or shown <= 0:
        return []
    lines = [f"- **{name}** fails on, e.g.:"]
    lines += [f"  - {failure_line(test, f)}" for f in items[:shown]]
    return lines


def render_markdown(report: Mapping[str, Any], failures_shown: int = 3) -> str:
    """The stage's summary: one row per test, then the worst failures of those below threshold."""
    tests: Mapping[str, Mapping[str, Any]] = report["tests"]
    summary = report["summary"]
    lines = [
        "# Behaviour tests",
        "",
        f"Suite `{report['suite']}` ({summary['tests']} tests, {summary['cases']} cases) on the "
        f"{report['model']['variant']} graph {report['model']['version']}.",
        "",
        "| test | kind | pass rate | threshold | |",
        "|---|---|---|---|---|",
    ]
    for name, test in tests.items():
        lines.append(
            f"| {name} | {_KIND.get(test['type'], test['type'])} | {rate(test)} | "
            f"{test['min_pass_rate']:.0%} | {status(test)} |"
        )
    below = summary["below_threshold"]
    lines += ["", f"Below threshold: {', '.join(below) if below else 'none'}."]
    if summary["not_applicable"]:
        lines.append("")
        lines += [
            f"- **{n}** does not apply: {tests[n]['reason']}" for n in summary["not_applicable"]
        ]
    blocks = [failures_block(n, tests[n], failures_shown) for n in below]
    if any(blocks):
        lines += ["", *[line for block in blocks for line in block]]
    return "\n".join(lines) + "\n"
