"""The replay in Markdown: ``reports/replay/summary.md`` and the PR report's section."""

from __future__ import annotations

from textclf.outputs.replay import LabelledScores, ReplaySummary
from textclf.report.markdown import Table, details, esc, fmt, signed, xychart

MAX_CHART_PAIRS = 12


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ci(low: float, high: float) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def _scores_table(scores: LabelledScores) -> list[str]:
    table = Table(["model", "accuracy", "interval", "macro-F1", "interval"])
    names = {"production": "production (recorded answers)", "candidate": "this PR"}
    order = sorted(scores.models, key=lambda n: (n != "production", n != "candidate", n))
    for name in order:  # production first: the file's keys are sorted
        s = scores.models[name]
        table.rows.append(
            [
                names.get(name, esc(name)),
                fmt(s.accuracy),
                _ci(s.accuracy_ci.low, s.accuracy_ci.high),
                fmt(s.macro_f1),
                _ci(s.macro_f1_ci.low, s.macro_f1_ci.high),
            ]
        )
    if len(scores.models) > 1:
        table.rows.append(
            [
                "Δ (this PR − production)",
                signed(scores.accuracy_delta),
                _ci(scores.accuracy_delta_ci.low, scores.accuracy_delta_ci.high),
                signed(scores.macro_f1_delta),
                _ci(scores.macro_f1_delta_ci.low, scores.macro_f1_delta_ci.high),
            ]
        )
    return [*table.render(), "", f"_{esc(scores.method)}._"]


def _matrix(summary: ReplaySummary, max_rows: int | None) -> list[str]:
    labels = sorted({n for row in summary.changed_matrix.values() for n in row})
    table = Table(["production ↓ / this PR →", *map(esc, labels)])
    for prod, row in summary.changed_matrix.items():
        cells = [
            f"**{fmt(row.get(n, 0))}**" if n != prod and row.get(n) else fmt(row.get(n, 0))
            for n in labels
        ]
        table.rows.append([esc(prod), *cells])
    return table.render(max_rows, "labels")


def _chart(summary: ReplaySummary) -> list[str]:
    pairs = sorted(
        (
            (count, prod, new)
            for prod, row in summary.changed_matrix.items()
            for new, count in row.items()
            if new != prod and count
        ),
        reverse=True,
    )[:MAX_CHART_PAIRS]
    if not pairs:
        return []
    return xychart(
        "Changed answers: production label to the label of this PR",
        [f"{p} to {n}" for _, p, n in pairs],
        "requests",
        bars=[[float(c) for c, _, _ in pairs]],
    )


def _slices(summary: ReplaySummary, max_rows: int | None) -> list[str]:
    table = Table(["family", "slice", "requests", "changed", "changed share"], align="llrrr")
    for family, slices in summary.slices.items():
        for name, s in slices.items():
            table.rows.append(
                [esc(family), esc(name), fmt(s.requests), fmt(s.changed), _pct(s.changed_share)]
            )
    return table.render(max_rows, "slices")


def _examples(summary: ReplaySummary, max_rows: int | None) -> list[str]:
    table = Table(["text", "production", "this PR", "feedback"], align="llll")
    for e in summary.examples:
        table.rows.append(
            [
                esc(e.text),
                f"{esc(e.production)} ({e.production_confidence:.2f})",
                f"{esc(e.new)} ({e.new_confidence:.2f})",
                esc(e.truth) if e.truth else "–",
            ]
        )
    return table.render(max_rows, "examples")


def _headline(summary: ReplaySummary) -> list[str]:
    without = summary.requests - summary.replayed
    if summary.changed_share is None:
        return [
            f"No request of the snapshot kept its text ({fmt(without)} without): nothing to "
            "replay, only production's label-level figures below."
        ]
    line = (
        f"**{_pct(summary.changed_share)} of answers change** ({fmt(summary.changed)} of "
        f"{fmt(summary.replayed)} replayed requests"
        + (f"; {fmt(without)} recorded without text" if without else "")
        + ")."
    )
    return [line]


def render_markdown(
    summary: ReplaySummary, *, heading: str = "###", max_rows: int | None = None
) -> str:
    """The replay as Markdown, under a heading of level ``heading``."""
    return "\n".join(render_lines(summary, heading=heading, max_rows=max_rows)) + "\n"


def render_lines(
    summary: ReplaySummary, *, heading: str = "###", max_rows: int | None = None
) -> list[str]:
    """The replay section's lines (see :func:`render_markdown`)."""
    snap = summary.snapshot
    versions = ", ".join(
        f"{esc(v)} ({fmt(n)})" for v, n in sorted(summary.production_models.items())
    )
    lines = [
        f"{heading} On {fmt(summary.requests)} recent production requests",
        "",
        f"Recorded {esc(snap.get('first_ts') or '?')} to {esc(snap.get('last_ts') or '?')} "
        f"by production model(s) {versions or 'unknown'}; replayed through this PR's model "
        f"{esc(summary.model.get('version', '?'))} ({esc(summary.model.get('variant', '?'))}).",
        "",
        *_headline(summary),
    ]
    if summary.feedback is not None:
        lines += [
            "",
            f"On the {fmt(summary.feedback.requests)} requests users labelled (`POST /feedback`):",
            "",
            *_scores_table(summary.feedback),
        ]
    elif summary.production is not None:
        lines += [
            "",
            f"Production on the {fmt(summary.production.requests)} requests users labelled "
            "(their texts were not recorded, so this PR's model cannot be scored on them):",
            "",
            *_scores_table(summary.production),
        ]
    else:
        lines += ["", "No feedback in this snapshot: no live accuracy to compare."]
    if summary.changed_matrix:
        lines += ["", *_chart(summary), "", *_matrix(summary, max_rows)]
    if summary.latency is not None:
        lat = summary.latency
        lines += [
            "",
            f"Latency on {fmt(lat.texts)} of these texts, one at a time: p50 "
            f"{fmt(lat.p50_ms)} ms, p95 {fmt(lat.p95_ms)} ms"
            + (
                f"; all of them in batches: {fmt(summary.throughput_texts_per_s)} texts/s"
                if summary.throughput_texts_per_s
                else ""
            )
            + ".",
        ]
    lines += ["", *details("Changed answers per slice", _slices(summary, max_rows))]
    lines += ["", *details("Most confident changed answers", _examples(summary, max_rows))]
    lines += [f"- {esc(note)}" for note in summary.notes]
    while lines and not lines[-1]:
        lines.pop()
    return lines
