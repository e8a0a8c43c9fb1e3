"""The sections of the PR report, each a list of Markdown lines built from the two snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textclf.latency import format_ratio
from textclf.outputs.drift import DriftSummary
from textclf.outputs.evaluate import ConfusionMatrix
from textclf.outputs.explain import ExplainSummary
from textclf.outputs.export import DistillComparison
from textclf.outputs.headline import FIGURES, SCORE_NOISE, SIZE_NOISE_MB, TIME_NOISE
from textclf.outputs.prepare import PrepareSummary
from textclf.outputs.replay import ReplaySummary
from textclf.outputs.slices import SlicesReport
from textclf.report.behaviour import behaviour_section
from textclf.report.expectations import expectations_section
from textclf.report.gate import Verdict, unavailable
from textclf.report.markdown import (
    Table,
    code,
    defang,
    details,
    downsample,
    embed,
    esc,
    fmt,
    signed,
    xychart,
)
from textclf.report.policy import Change, gate_changes, split_changes
from textclf.report.sources import (
    Snapshot,
    data_md5,
    numeric_leaves,
    params_diff,
    sources,
)

# The workflow artifact (.github/workflows/pr.yml uploads it) and the HTML reports it holds.
ARTIFACT_NAME = "model-review"
ARTIFACT_FILES = (
    ("SHAP text plots", "artifacts/explain/shap.html"),
    ("Evidently drift report", "artifacts/drift/report.html"),
    ("DVC plots, base vs this PR", "dvc_plots/index.html"),
    ("the model card", "reports/model_card.md"),
    ("every metrics file", "reports/"),
)
MAX_CURVE_POINTS = 40
EXAMPLE_CHARS = 240


@dataclass(frozen=True)
class Context:
    """Everything a section needs: both snapshots, the verdict, the row budget, CI links."""

    new: Snapshot
    base: Snapshot
    verdict: Verdict
    max_rows: int | None
    env: Mapping[str, str]
    head: str = "this branch"


def _diff(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


def _count_diff(new: Any, old: Any) -> str:
    if not isinstance(new, int) or not isinstance(old, int):
        return "—"
    return f"{new - old:+d}"


def _short(commit: str | None) -> str:
    return commit[:8] if commit else "workspace"


# --- the verdict and what changed ------------------------------------------------------------


def header(ctx: Context) -> list[str]:
    """Title and the gate verdict with every check and its reason."""
    v = ctx.verdict
    base = f"{code(ctx.base.label)} ({code(_short(ctx.base.commit))})"
    lines = [f"## Model review: {code(ctx.head)} vs {base}", ""]
    if v.passed:
        lines.append(
            f"### ✅ Promotion gate passed ({len(v.checks)} checks"
            + (f", {len(v.warnings)} warning(s))" if v.warnings else ")")
        )
    else:
        lines.append(f"### ❌ Promotion gate failed: {len(v.failures)} of {len(v.checks)} checks")
    table = Table(["", "check", "result"], align="lll")
    for c in v.checks:
        icon = "✅" if c.passed else ("❌" if c.blocking else "⚠️")
        note = "" if c.blocking or c.passed else " _(warning, not blocking)_"
        table.rows.append([icon, esc(c.name), esc(c.detail) + note])
    lines += ["", *table.render()]
    if not v.passed:
        lines += [
            "",
            "Merging is blocked until these pass. `make gate` runs the same checks "
            f"locally, with the thresholds of {code(ctx.base.label)}: its `gate.yaml` and the "
            "export, slices and drift limits of its `params.yaml`.",
        ]
    lines += [*_notes(v.notes), *_changes_notice(ctx)]
    return lines


def _notes(notes: tuple[str, ...]) -> list[str]:
    return ["", *[f"> **Note:** {esc(n)}" for n in notes]] if notes else []


def _change_rows(changes: list[Change]) -> list[str]:
    table = Table(["setting", "base", "this PR"], align="lll")
    for c in changes:
        table.rows.append(
            [
                code(c.key),
                "—" if c.base is None else code(c.base),
                "—" if c.new is None else code(c.new),
            ]
        )
    return table.render()


def _changes_notice(ctx: Context) -> list[str]:
    """What this PR changes in its own gate, and in what its test split holds."""
    base = code(ctx.base.label)
    notices = (
        (
            gate_changes(ctx.base, ctx.new),
            "This PR changes the gate: takes effect after merge",
            f"This review is judged with the thresholds of {base}. Reviewers: the new values "
            "below apply to every pull request after this one merges.",
        ),
        (
            split_changes(ctx.base, ctx.new),
            "This PR changes the test split: not like for like",
            f"The test metrics below are measured on other texts than {base}'s, so their "
            "deltas compare different test sets.",
        ),
    )
    lines: list[str] = []
    for changes, title, why in notices:
        if changes:
            lines += ["", f"#### ⚠️ {title}", "", why, "", *_change_rows(changes)]
    return lines


def params_section(ctx: Context) -> list[str]:
    """The params that differ from the base."""
    lines = ["### Params changed", ""]
    if ctx.base.text("params") is None:
        lines.append(f"{code(ctx.base.label)} has no `params.yaml`: every value below is new.")
    changes = params_diff(ctx.base, ctx.new)
    if not changes:
        return [*lines, f"No params changed: `params.yaml` matches {code(ctx.base.label)}."]
    table = Table(["param", "base", "this PR"], align="lll")
    for key, old, new in changes:
        table.rows.append(
            [code(key), "—" if old is None else code(old), "—" if new is None else code(new)]
        )
    return lines + table.render(ctx.max_rows, "params")


# --- metrics ---------------------------------------------------------------------------------


def metrics_section(ctx: Context) -> list[str]:
    """Headline metrics with base, new and delta, a bar chart, and every other metric."""
    lines = ["### Metrics", ""]
    if ctx.base.json("evaluate") is None:
        lines += [
            f"First model: {code(ctx.base.label)} has no "
            f"`{sources()['evaluate'].path}`, so there is nothing to compare with.",
            "",
        ]
    table = Table(["metric", "base", "this PR", "Δ", ""])
    new_run, base_run = ctx.new.run(), ctx.base.run()
    for figure in FIGURES:
        new, old = figure.value(new_run), figure.value(base_run)
        if new is None and old is None:
            continue
        table.rows.append(
            [
                figure.label,
                fmt(old),
                f"**{fmt(new)}**",
                figure.delta(new, old),
                figure.trend(new, old),
            ]
        )
    if not table.rows:
        return [*lines, f"No metrics yet: {unavailable(ctx.new, 'evaluate')}."]
    lines += table.render()
    lines += [
        "",
        "🟢 better, 🔴 worse, ⚪ unchanged or no preferred direction; ≈0: a change below the "
        f"noise floor ({SCORE_NOISE:g} for scores, {TIME_NOISE:.0%} for timings, "
        f"{SIZE_NOISE_MB:g} MB for sizes), read as unchanged.",
    ]
    lines += _metric_chart(ctx)
    lines += ["", *details("All metrics (base vs this PR)", _all_metrics(ctx))]
    return lines


def _metric_chart(ctx: Context) -> list[str]:
    names = ("accuracy", "macro_f1", "weighted_f1", "baseline.macro_f1")
    new = numeric_leaves(ctx.new.json("evaluate"))
    old = numeric_leaves(ctx.base.json("evaluate"))
    shown = [n for n in names if n in new]
    if not shown:
        return []
    labels = [n.replace("baseline.macro_f1", "baseline F1").replace("_", "-") for n in shown]
    line = [[old[n] for n in shown]] if all(n in old for n in shown) else []
    return [
        "",
        *xychart(
            "Test metrics: bars = this PR, line = base",
            labels,
            "score",
            bars=[[new[n] for n in shown]],
            lines=line,
            clamp01=True,
        ),
    ]


def _all_metrics(ctx: Context) -> list[str]:
    table = Table(["metric", "base", "this PR", "Δ"])
    for key in ("evaluate", "train", "export"):
        prefix = sources()[key].path
        new, old = numeric_leaves(ctx.new.json(key)), numeric_leaves(ctx.base.json(key))
        for name in sorted(set(new) | set(old)):
            if name.startswith(("per_class.", "baseline.per_class.")):
                continue  # in the per-class table
            n, o = new.get(name), old.get(name)
            status = " _(new)_" if o is None else " _(removed)_" if n is None else ""
            table.rows.append(
                [
                    f"{code(name)} <sub>{esc(prefix)}</sub>{status}",
                    fmt(o),
                    fmt(n),
                    signed(_diff(n, o)),
                ]
            )
    return table.render(ctx.max_rows, "metrics")


def per_class_section(ctx: Context) -> list[str]:
    """Per-class precision, recall and F1 with the change in F1, and a chart."""
    new = (ctx.new.json("evaluate") or {}).get("per_class") or {}
    if not new:
        return []
    old = (ctx.base.json("evaluate") or {}).get("per_class") or {}
    base_model = ((ctx.new.json("evaluate") or {}).get("baseline") or {}).get("per_class") or {}
    table = Table(["class", "precision", "recall", "F1", "Δ F1", "TF-IDF F1", "support"])
    for label, row in new.items():
        f1 = row.get("f1")
        old_f1 = (old.get(label) or {}).get("f1")
        table.rows.append(
            [
                esc(label),
                fmt(row.get("precision")),
                fmt(row.get("recall")),
                f"**{fmt(f1)}**",
                signed(_diff(f1, old_f1)),
                fmt((base_model.get(label) or {}).get("f1")),
                fmt(row.get("support")),
            ]
        )
    lines = ["### Per class", "", *table.render(ctx.max_rows, "classes")]
    labels = list(new)[:20]
    f1s = [float(new[k].get("f1", 0.0)) for k in labels]
    line = (
        [[float(old[k]["f1"]) for k in labels]]
        if all("f1" in (old.get(k) or {}) for k in labels)
        else []
    )
    return [
        *lines,
        "",
        *xychart(
            "F1 per class: bars = this PR, line = base",
            labels,
            "F1",
            bars=[f1s],
            lines=line,
            clamp01=True,
        ),
    ]


def confusion_section(ctx: Context) -> list[str]:
    """The confusion matrix (rows: true class, columns: predicted), with changes vs base."""
    cm = ctx.new.report("confusion", ConfusionMatrix)
    if cm is None or not cm.labels:
        return []
    labels, matrix = cm.labels, cm.matrix
    old = ctx.base.report("confusion", ConfusionMatrix)
    same = old is not None and old.labels == labels
    limit = ctx.max_rows or len(labels)
    shown = labels[:limit]
    table = Table(["true ↓ / predicted →", *[esc(x) for x in shown]])
    for i, label in enumerate(shown):
        cells = []
        for j in range(len(shown)):
            value = matrix[i][j]
            cell = f"**{value}**" if i == j else str(value)
            if old is not None and same:
                change = value - old.matrix[i][j]
                cell += f" ({change:+d})" if change else ""
            cells.append(cell)
        table.rows.append([esc(label), *cells])
    lines = ["### Confusion matrix", "", *table.render()]
    if len(labels) > len(shown):
        lines += ["", f"_… {len(labels) - len(shown)} more classes not shown._"]
    if same:
        lines += ["", f"In parentheses: the change in count vs {code(ctx.base.label)}."]
    return lines


def curves_section(ctx: Context) -> list[str]:
    """Training curves (DVCLive) as Mermaid line charts; the base's when its steps match."""
    lines: list[str] = []
    for name, title, clamp in (
        ("val/macro_f1", "Validation macro-F1", True),
        ("val/loss", "Validation loss", False),
        ("train/loss", "Training loss", False),
    ):
        new = downsample(ctx.new.curve(name), MAX_CURVE_POINTS)
        if len(new) < 2:
            continue
        old = downsample(ctx.base.curve(name), MAX_CURVE_POINTS)
        steps = [int(s) for s, _ in new]
        series = [[v for _, v in new]]
        note = "line = this PR"
        if old and [int(s) for s, _ in old] == steps:
            series.append([v for _, v in old])
            note = "first line = this PR, second = base"
        elif old:
            note += f"; base ended at {fmt(old[-1][1])} after step {int(old[-1][0])}"
        lines += [
            "",
            *xychart(f"{title} ({note})", steps, name.split("/")[-1], lines=series, clamp01=clamp),
        ]
    return ["### Training curves", *lines] if lines else []


# --- slices, SHAP, drift, export, data --------------------------------------------------------


def slices_section(ctx: Context) -> list[str]:
    """Slice metrics with changes vs the overall score and vs the base, and flagged disparities."""
    report = ctx.new.report("slices", SlicesReport)
    if report is None:
        return ["### Slices", "", f"Not available: {unavailable(ctx.new, 'slices')}."]
    base = ctx.base.report("slices", SlicesReport)
    old_slices = base.slices if base else {}
    table = Table(["slice", "support", "accuracy", "macro-F1", "Δ vs overall", "Δ vs base"])
    for family, members in report.slices.items():
        for name, s in members.items():
            label = f"{esc(family)} / {esc(name)}"
            if not s.scored:
                table.rows.append([label, fmt(s.support), "not scored", "", "", ""])
                continue
            before = old_slices.get(family, {}).get(name)
            table.rows.append(
                [
                    label,
                    fmt(s.support),
                    fmt(s.accuracy),
                    fmt(s.macro_f1),
                    signed(s.macro_f1_delta),
                    signed(_diff(s.macro_f1, before.macro_f1 if before else None)),
                ]
            )
    lines = ["### Slices", "", *table.render(ctx.max_rows, "slices")]
    threshold = report.disparity_threshold
    if not report.flagged:
        return [*lines, "", f"No disparity flagged (four-fifths rule, threshold {fmt(threshold)})."]
    dis = Table(["class", "slice", "rate", "vs best slice", "ratio", "label ratio"])
    for f in report.flagged:
        dis.rows.append(
            [
                esc(f.label),
                f"{esc(f.family)} / {esc(f.slice)}",
                fmt(f.rate),
                f"{esc(f.max_slice)} ({fmt(f.max_rate)})",
                fmt(f.ratio),
                fmt(f.label_ratio),
            ]
        )
    return [
        *lines,
        "",
        f"**{len(report.flagged)} disparity flag(s)** (prediction-rate ratio below "
        f"{fmt(threshold)}; a low label ratio too means the gap is in the data):",
        "",
        *dis.render(ctx.max_rows, "flags"),
    ]


def explain_section(ctx: Context) -> list[str]:
    """Top SHAP tokens per class and a few explained examples."""
    summary = ctx.new.report("explain", ExplainSummary)
    if summary is None:
        return [
            "### What the model looks at (SHAP)",
            "",
            f"Not available: {unavailable(ctx.new, 'explain')}.",
        ]
    table = Table(["class", "tokens pushing towards the class (mean SHAP)"], align="ll")
    for label, ranking in summary.classes.items():
        tokens = ranking.top_positive or ranking.top_tokens
        shown = ", ".join(f"{code(t.token)} {fmt(t.mean_shap)}" for t in tokens[:8])
        table.rows.append([esc(label), shown or "—"])
    lines = [
        "### What the model looks at (SHAP)",
        "",
        f"{fmt(summary.sample_size)} test texts explained with the "
        f"{esc(summary.model.get('variant', 'ONNX'))} graph.",
        "",
        *table.render(ctx.max_rows, "classes"),
    ]
    examples: list[str] = []
    for label, items in summary.examples.items():
        for item in items[:1]:
            pushed = ", ".join(code(t.token) for t in item.top_tokens)
            mark = "✅" if item.prediction == item.label else "❌"
            examples += [
                f"- **{esc(label)}** {fmt(item.probability)} {mark} "
                f"(true: {esc(item.label)}) — {esc(item.text, EXAMPLE_CHARS)}",
                f"  - pushed by: {pushed or '—'}",
            ]
    if examples:
        lines += [
            "",
            "Most confident examples per class:",
            "",
            *examples[: 2 * (ctx.max_rows or 99)],
        ]
    return lines


def drift_section(ctx: Context) -> list[str]:
    """The drift verdict, its reasons and the per-column tests."""
    summary = ctx.new.report("drift", DriftSummary)
    if summary is None:
        return ["### Drift", "", f"Not available: {unavailable(ctx.new, 'drift')}."]
    rows = summary.rows
    lines = [
        "### Drift",
        "",
        f"{'⚠️ **Drift detected**' if summary.drift_detected else '✅ No drift detected'}: "
        f"{fmt(summary.n_drifted)} of {fmt(summary.n_columns)} columns drifted "
        f"(reference {fmt(rows.get('reference'))} rows vs current {fmt(rows.get('current'))}).",
    ]
    lines += [f"- {esc(r)}" for r in summary.reasons]
    table = Table(["column", "type", "test", "score", "threshold", "drifted"], align="lllrrl")
    for column, c in summary.columns.items():
        table.rows.append(
            [
                code(column),
                esc(c.type),
                esc(c.method),
                fmt(c.score),
                fmt(c.threshold),
                "⚠️ yes" if c.drifted else "no",
            ]
        )
    return [*lines, "", *details("Per-column drift tests", table.render(ctx.max_rows, "columns"))]


def replay_section(ctx: Context) -> list[str]:
    """The PR's model on recorded production requests (when a snapshot was replayed)."""
    from textclf.production.render import render_lines

    summary = ctx.new.report("replay", ReplaySummary)
    if summary is None:
        error = ctx.new.report_error("replay")
        if error is None:
            return []  # no snapshot replayed; the gate says so when a replay check is on
        return ["### Production replay", "", f"Not available: {esc(error, 300)}."]
    return render_lines(summary, heading="###", max_rows=ctx.max_rows)


def export_section(ctx: Context) -> list[str]:
    """ONNX parity, sizes and latency, with the base's figures."""
    export = ctx.new.run().export
    if export is None:
        return [
            "### Export: parity, size, latency",
            "",
            f"Not available: {unavailable(ctx.new, 'export')}.",
        ]
    old = ctx.base.run().export
    parity = next((c for c in ctx.verdict.checks if c.name == "export parity"), None)
    n_test = getattr(export, "n_test", None)
    lines = [
        "### Export: parity, size, latency",
        "",
        f"{'✅' if parity and parity.passed else '❌'} parity on {fmt(n_test)} "
        f"test texts: fp32 max |Δlogit| {fmt(export.fp32.max_abs_logit_diff)}; int8 agrees "
        f"with torch on {fmt(export.int8.agreement)}, macro-F1 drop "
        f"{signed(export.int8.macro_f1_drop)} (gate: {esc(parity.detail if parity else '—')}).",
        "",
    ]
    size = next(f for f in FIGURES if f.label == "int8 size (MB)")
    sizes = Table(["model", "size (MB)", "base", "Δ"])
    for name in ("torch", "fp32", "int8"):
        new_size = getattr(export, name).size_mb
        old_size = getattr(old, name).size_mb if old else None
        sizes.rows.append([name, fmt(new_size), fmt(old_size), size.delta(new_size, old_size)])
    lines += sizes.render()
    old_latency = old.latency_by_batch() if old else {}
    table = Table(
        ["batch", "engine", "p50 ms", "p95 ms", "base p95 ms", "texts/s", "vs torch"],
        align="rlrrrrr",
    )
    for batch, engines in export.latency_by_batch().items():
        for engine, row in engines.items():
            before = old_latency.get(batch, {}).get(engine)
            table.rows.append(
                [
                    str(batch),
                    esc(engine),
                    fmt(row.p50_ms),
                    fmt(row.p95_ms),
                    fmt(before.p95_ms if before else None),
                    fmt(row.texts_per_s),
                    "—" if row.speedup_vs_torch is None else f"{row.speedup_vs_torch:.2f}×",
                ]
            )
    if table.rows:
        lines += [
            "",
            f"CPU latency ({fmt(export.threads)} threads; timings depend on the runner):",
            "",
            *table.render(ctx.max_rows, "timings"),
        ]
    if export.distill is not None:
        lines += ["", *distill_lines(export.distill)]
    return lines


def distill_lines(compared: DistillComparison) -> list[str]:
    """The distilled student against its teacher (int8 graphs, timed in one run)."""
    student, teacher = compared.student, compared.teacher
    batches = [k.replace("_", " ") for k in compared.throughput_ratio]
    table = Table(["", "layers", "int8 MB", "int8 macro-F1", *(f"{b} texts/s" for b in batches)])
    for name, side in (("teacher", teacher), ("student", student)):
        shipped = " (ships)" if compared.shipped == name else ""
        table.rows.append(
            [
                f"{name}{shipped}",
                str(side.layers),
                fmt(side.int8_size_mb),
                fmt(side.int8_macro_f1),
                *(fmt(side.texts_per_s.get(k)) for k in compared.throughput_ratio),
            ]
        )
    table.rows.append(
        [
            "student / teacher",
            "",
            format_ratio(compared.size_ratio),
            f"{signed(-compared.macro_f1_drop)}",
            *(format_ratio(v) for v in compared.throughput_ratio.values()),
        ]
    )
    return [
        f"Distillation: the {compared.shipped} ships. Student vs teacher, int8 on CPU "
        "(throughput per batch size):",
        "",
        *table.render(),
    ]


def data_section(ctx: Context) -> list[str]:
    """The data version (data.dvc md5) and the split sizes."""
    new_md5, old_md5 = data_md5(ctx.new), data_md5(ctx.base)
    if new_md5 is None:
        version = "`data.dvc` is missing: run `dvc add data` and commit data.dvc"
    elif new_md5 == old_md5:
        version = f"unchanged, `data.dvc` md5 {code(new_md5)}"
    else:
        version = (
            f"**changed**: `data.dvc` md5 {code(new_md5)} (base: "
            f"{code(old_md5) if old_md5 else 'none'})"
        )
    lines = ["### Data", "", f"Data version: {version}."]
    prep = ctx.new.report("prepare", PrepareSummary)
    if prep is None:
        return [*lines, f"Split summary not available: {unavailable(ctx.new, 'prepare')}."]
    lines.append(
        f"{fmt(prep.rows_raw)} raw rows, {fmt(prep.rows_after_dedup)} "
        f"after de-duplication (source md5 {code(prep.source_md5)})."
    )
    base = ctx.base.report("prepare", PrepareSummary)
    old_splits = base.splits if base else {}
    labels = prep.labels()
    table = Table(["split", "rows", "Δ rows", *[esc(x) for x in labels]])
    for name, s in prep.splits.items():
        before = old_splits.get(name)
        table.rows.append(
            [
                esc(name),
                fmt(s.rows),
                _count_diff(s.rows, before.rows if before else None),
                *[fmt(s.labels.get(x)) for x in labels],
            ]
        )
    return [*lines, "", *table.render(ctx.max_rows, "splits")]


def bench_section(ctx: Context) -> list[str]:
    """``reports/bench.md`` when ``make bench`` wrote one (machine-dependent, not compared)."""
    text = ctx.new.text("bench")
    if not text or not text.strip():
        return []
    return [
        "### Benchmarks",
        "",
        f"From `{sources()['bench'].path}` (written by `make bench` on the machine that ran it; "
        "timings are not compared with the base).",
        "",
        *embed(text, ctx.max_rows),
    ]


def links_section(ctx: Context) -> list[str]:
    """Where the full HTML reports are: the workflow run's artifacts, or local paths."""
    server, repo, run = (
        ctx.env.get("GITHUB_SERVER_URL"),
        ctx.env.get("GITHUB_REPOSITORY"),
        ctx.env.get("GITHUB_RUN_ID"),
    )
    files = ", ".join(f"{what} (`{path}`)" for what, path in ARTIFACT_FILES)
    if server and repo and run:
        url = f"{server}/{repo}/actions/runs/{run}"
        return [
            "### Full reports",
            "",
            f"Download the **[`{ARTIFACT_NAME}` artifact]({url}#artifacts)** "
            f"of [this workflow run]({url}): {files}.",
        ]
    return ["### Full reports", "", f"Local run (no `GITHUB_RUN_ID`): {files} are on disk."]


def problems_section(ctx: Context) -> list[str]:
    """Input files that could not be parsed (a stage wrote something unexpected)."""
    errors = sorted(set(ctx.new.errors + ctx.base.errors))
    if not errors:
        return []
    return ["### Unreadable inputs", "", *[f"- {esc(e, 300)}" for e in errors]]


def footer(ctx: Context) -> list[str]:
    """Where the report came from."""
    return [
        "---",
        f"<sub>Built by `textclf report` from the files the pipeline wrote, against "
        f"{code(ctx.base.label)} at {code(_short(ctx.base.commit))}. The verdict is also in "
        "`reports/pr/gate.json`.</sub>",
    ]


SECTIONS = (
    header,
    params_section,
    metrics_section,
    per_class_section,
    confusion_section,
    curves_section,
    slices_section,
    behaviour_section,
    explain_section,
    drift_section,
    replay_section,
    export_section,
    data_section,
    expectations_section,
    bench_section,
    links_section,
    problems_section,
    footer,
)


def render(ctx: Context) -> str:
    """The whole report as Markdown (no length cap), mentions and references defanged."""
    blocks = [lines for section in SECTIONS if (lines := section(ctx))]
    return defang("\n\n".join("\n".join(lines) for lines in blocks) + "\n")
