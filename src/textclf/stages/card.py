"""card: the model card (Markdown), generated from this run's files; never edited by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from textclf import io
from textclf.behaviour.render import render_markdown
from textclf.config.model import ModelParams
from textclf.config.train import TrainParams
from textclf.outputs.base import Report
from textclf.outputs.behaviour import BehaviourReport
from textclf.outputs.drift import DriftSummary
from textclf.outputs.evaluate import EvaluateMetrics
from textclf.outputs.explain import ExplainSummary
from textclf.outputs.export import ExportMetrics
from textclf.outputs.headline import FIGURES, Run, fmt, summary_lines
from textclf.outputs.prepare import PrepareSummary
from textclf.outputs.slices import SlicesReport
from textclf.outputs.train import TrainMetrics
from textclf.paths import Paths

NA = "not available"
ReportT = TypeVar("ReportT", bound=Report)


class Inputs(Protocol):
    """The params sections this stage reads: `dvc.yaml` lists the same (a test checks)."""

    @property
    def model(self) -> ModelParams: ...

    @property
    def train(self) -> TrainParams: ...


def _optional(model: type[ReportT], path: Path) -> ReportT | None:
    """The report at ``path`` through its model; None when that stage has not run (an invalid
    file raises, naming the fix)."""
    return model.read(path) if path.is_file() else None


def data_dvc_md5(path: Path) -> str | None:
    """The md5 that ``data.dvc`` records for the data directory (None without data.dvc)."""
    if not path.is_file():
        return None
    return io.dvc_out_md5(yaml.safe_load(path.read_text(encoding="utf-8")))


def _f(value: Any, digits: int = 4) -> str:
    return fmt(value, digits) if isinstance(value, int | float) else NA


def _missing(what: str, stage: str) -> list[str]:
    return [f"{what}: {NA} (run `dvc repro {stage}`).", ""]


def _data(prep: PrepareSummary | None, dvc_md5: str | None) -> list[str]:
    lines = ["## Data", ""]
    if prep is None:
        return lines + _missing("Data summary", "prepare")
    lines += [
        f"- Source: `{prep.source}` (md5 `{prep.source_md5}`); data.dvc md5: `{dvc_md5 or NA}`.",
        f"- {prep.rows_raw} raw rows; {prep.duplicates_removed} duplicates and "
        f"{prep.conflicting_rows_removed} rows with conflicting labels removed; "
        f"{prep.rows_after_dedup} rows split.",
        "",
    ]
    labels = prep.labels()
    lines += ["| split | rows | " + " | ".join(labels) + " |", "|---|---:|" + "---:|" * len(labels)]
    for name, s in prep.splits.items():
        counts = " | ".join(str(s.labels.get(lab, 0)) for lab in labels)
        lines.append(f"| {name} | {s.rows} | {counts} |")
    return [*lines, ""]


def _training(params: Inputs, live: TrainMetrics | None) -> list[str]:
    m, t = params.model, params.train
    lines = [
        "## Training",
        "",
        f"- Backbone `{m.backbone}`, max_length {m.max_length}, dropout {m.dropout}, "
        f"preprocessing {m.preprocess.model_dump()}.",
        f"- {t.epochs} epoch(s) (max_steps {t.max_steps}), batch size {t.batch_size}, "
        f"learning rate {t.learning_rate:g}, weight decay {t.weight_decay:g}, warm-up "
        f"{t.warmup_ratio:g}, seed {t.seed}, precision {t.precision}.",
    ]
    if live:
        run = live.run
        lines.append(
            f"- Best validation macro-F1 {_f(live.best.val_macro_f1)}; training took "
            f"{_f(run.train_seconds, 0)} s at {_f(run.train_samples_per_second, 1)} samples/s "
            f"on {run.world_size} process(es)."
        )
    return [*lines, ""]


def _headline(run: Run) -> list[str]:
    """The same figures, labels and formatting as `textclf summary` and the PR review."""
    lines = ["## Headline", "", *summary_lines(run), "", "| figure | value |", "|---|---:|"]
    values = ((f.label, f.value(run)) for f in FIGURES)
    lines += [f"| {label} | {fmt(value)} |" for label, value in values if value is not None]
    return [*lines, ""]


def _metrics(metrics: EvaluateMetrics) -> list[str]:
    base = metrics.baseline
    lines = ["## Test metrics", "", "| metric | model | TF-IDF + LR baseline |", "|---|---:|---:|"]
    for key in ("accuracy", "macro_f1", "weighted_f1", "ece", "log_loss"):
        lines.append(f"| {key} | {_f(getattr(metrics, key))} | {_f(getattr(base, key))} |")
    lines += [
        "",
        f"Macro-F1 over the baseline: {_f(metrics.macro_f1_over_baseline, 4)} "
        f"on {metrics.n} test texts.",
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, c in metrics.per_class.items():
        lines.append(f"| {label} | {_f(c.precision)} | {_f(c.recall)} | {_f(c.f1)} | {c.support} |")
    return [*lines, ""]


def _slices(report: SlicesReport | None) -> list[str]:
    lines = ["## Slices and disparity", ""]
    if report is None:
        return lines + _missing("Slice metrics", "slices")
    lines += ["| slice | support | accuracy | macro-F1 |", "|---|---:|---:|---:|"]
    for family, members in report.slices.items():
        for name, s in members.items():
            scores = f"{_f(s.accuracy)} | {_f(s.macro_f1)}" if s.scored else "not scored | "
            lines.append(f"| {family}/{name} | {s.support} | {scores} |")
    lines.append("")
    threshold = report.disparity_threshold
    if report.flagged:
        lines.append(
            f"{len(report.flagged)} prediction-rate disparities below {threshold:g} "
            "(four-fifths rule):"
        )
        lines += [
            f"- {f.label} in {f.family}/{f.slice}: rate {_f(f.rate, 3)} vs "
            f"{_f(f.max_rate, 3)} in {f.max_slice} (ratio {_f(f.ratio, 2)}; "
            f"true-label ratio {_f(f.label_ratio, 2)})"
            for f in report.flagged
        ]
    else:
        lines.append(f"No prediction-rate disparity below {threshold:g}.")
    return [*lines, ""]


def _explain(summary: ExplainSummary | None, shown: int = 8) -> list[str]:
    lines = ["## Explainability (SHAP)", ""]
    if summary is None:
        return lines + _missing("SHAP summary", "explain")
    lines += [
        f"Tokens that push most towards each class (mean SHAP over {summary.sample_size} "
        "test texts):",
        "",
    ]
    for label, ranking in summary.classes.items():
        tokens = ", ".join(
            f"`{t.token}` ({t.mean_shap:+.3f})" for t in ranking.top_positive[:shown]
        )
        lines.append(f"- {label}: {tokens or NA}")
    return [*lines, ""]


def _export(metrics: ExportMetrics | None) -> list[str]:
    lines = ["## ONNX parity, size and latency", ""]
    if metrics is None:
        return lines + _missing("Export metrics", "export")
    lines += [
        "| graph | macro-F1 | agreement with torch | max abs logit diff | size (MB) |",
        "|---|---:|---:|---:|---:|",
        f"| torch | {_f(metrics.torch.macro_f1)} | – | – | {_f(metrics.torch.size_mb, 1)} |",
    ]
    for variant, g in (("fp32", metrics.fp32), ("int8", metrics.int8)):
        lines.append(
            f"| onnx {variant} | {_f(g.macro_f1)} | {_f(g.agreement)} | "
            f"{_f(g.max_abs_logit_diff, 6)} | {_f(g.size_mb, 1)} |"
        )
    lines += ["", f"Parity gates passed: {metrics.gates.passed}.", ""]
    latency = metrics.latency_by_batch()
    if latency:
        lines += ["| batch | engine | p50 ms | p95 ms | texts/s |", "|---|---|---:|---:|---:|"]
        for batch, engines in latency.items():
            for engine, row in engines.items():
                lines.append(
                    f"| {batch} | {engine} | {_f(row.p50_ms, 2)} | {_f(row.p95_ms, 2)} | "
                    f"{_f(row.texts_per_s, 1)} |"
                )
        lines += ["", f"CPU threads: {metrics.threads or NA}.", ""]
    return lines


def _drift(summary: DriftSummary | None) -> list[str]:
    lines = ["## Drift (current split vs reference sample)", ""]
    if summary is None:
        return lines + _missing("Drift summary", "drift")
    verdict = "drift detected" if summary.drift_detected else "no drift"
    why = f" ({'; '.join(summary.reasons)})" if summary.reasons else ""
    return [
        *lines,
        f"{verdict}{why}: {summary.n_drifted} of {summary.n_columns} columns "
        f"drifted ({', '.join(summary.drifted_columns) or 'none'}).",
        "",
    ]


def _limitations(
    params: Inputs,
    metrics: EvaluateMetrics,
    slices: SlicesReport | None,
    prep: PrepareSummary | None,
) -> list[str]:
    lines = [
        "## Limitations",
        "",
        f"- Texts longer than {params.model.max_length} tokens are truncated; the model saw "
        "only the domain and language of its training data"
        + (f" (`{prep.source}`)" if prep else "")
        + "; other text may score worse.",
        f"- Calibration: expected calibration error {_f(metrics.ece)}; treat "
        "probabilities as scores unless that is small.",
    ]
    support = {k: v.support for k, v in metrics.per_class.items()}
    if support:
        rare = min(support, key=lambda k: support[k])
        lines.append(
            f"- Fewest test examples: '{rare}' ({support[rare]}), so its metrics are "
            "the least certain."
        )
    if slices is not None:
        if slices.unscored:
            lines.append(f"- Too few test rows to score: {', '.join(slices.unscored)}.")
        if slices.flagged:
            lines.append(
                f"- {len(slices.flagged)} slice disparities are flagged above; "
                "review them before use on those kinds of text."
            )
    lines.append("- Not for decisions about individuals without human review.")
    return [*lines, ""]


def _behaviour(report: BehaviourReport | None) -> list[str]:
    if report is None:
        return ["## Behaviour tests", "", *_missing("Behaviour test results", "behaviour")]
    body = render_markdown(report.model_dump(), failures_shown=2).split("\n", 2)[2]
    return ["## Behaviour tests", "", *body.rstrip().split("\n"), ""]


def render_card(params: Inputs, paths: Paths) -> str:
    """The model card as Markdown, from the files the pipeline wrote under ``paths``."""
    metrics = EvaluateMetrics.read(paths.metrics)  # missing or invalid: the error names the fix
    export = _optional(ExportMetrics, paths.export_metrics)
    live = _optional(TrainMetrics, paths.train_reports / "metrics.json")
    prep = _optional(PrepareSummary, paths.data_summary)
    slices = _optional(SlicesReport, paths.slices_metrics)
    labels = list(metrics.per_class)
    lines = [
        f"# Model card: {' / '.join(labels)} text classifier",
        "",
        "<!-- Generated by `textclf card` (dvc stage `card`) from this run's files. Do not edit: "
        "change params.yaml, the code or the data and rerun `dvc repro`. -->",
        "_Generated by `textclf card` from the pipeline's outputs; never edit it by hand._",
        "",
        "## Intended use",
        "",
        f"Sorts short English texts (such as tweets) into {', '.join(labels)}, e.g. to track "
        "opinion in aggregate or to route messages. Per-text outputs are probabilities; the "
        "serving API returns them with the predicted label.",
        "",
    ]
    lines += _headline(Run(evaluate=metrics, export=export, train=live))
    lines += _data(prep, data_dvc_md5(paths.data_dvc))
    lines += _training(params, live)
    lines += _metrics(metrics)
    lines += _slices(slices)
    lines += _behaviour(_optional(BehaviourReport, paths.behaviour_metrics))
    lines += _explain(_optional(ExplainSummary, paths.explain_summary))
    lines += _export(export)
    lines += _drift(_optional(DriftSummary, paths.drift_summary))
    lines += _limitations(params, metrics, slices, prep)
    return "\n".join(lines).rstrip() + "\n"


def run(params: Inputs, paths: Paths) -> dict[str, Any]:
    """Write ``reports/model_card.md``; return its path and size."""
    text = render_card(params, paths)
    io.write_text(paths.model_card, text)
    return {"path": str(paths.model_card), "lines": text.count("\n")}
