"""``textclf replay`` and ``textclf snapshot``: production traffic in the review."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from textclf.console import ErrorReportingGroup, print_json

snapshot_app = typer.Typer(
    cls=ErrorReportingGroup,
    help="Traffic snapshots: a window of recorded traffic joined with its feedback.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TrafficOpt = Annotated[
    Path,
    typer.Option(
        "--traffic", help="a traffic snapshot (e.g. traffic/) or a traffic-log directory."
    ),
]
RootOpt = Annotated[Path, typer.Option("--root", help="repository root.")]
ParamsOpt = Annotated[Path, typer.Option("--params", help="params file to read.")]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="from a traffic-log directory, only traffic recorded at or after this: a duration "
        "back from now (90m, 24h, 7d) or an ISO 8601 timestamp (no timezone = UTC); default all.",
    ),
]


def _since(value: str | None) -> datetime | None:
    from textclf.monitoring.check import parse_since

    return parse_since(value, datetime.now(UTC)) if value is not None else None


@snapshot_app.command("export")
def export_cmd(
    traffic_dir: Annotated[
        Path, typer.Option("--traffic-dir", help="the directory the service records to.")
    ],
    to: Annotated[
        Path,
        typer.Option("--to", help="storage prefix: the snapshot goes to <prefix>/<UTC stamp>/."),
    ],
    since: SinceOpt = None,
) -> None:
    """Snapshot a window of recorded traffic and its feedback (what the drift CronJob does)."""
    from textclf.monitoring.snapshot import export_snapshot, read_manifest

    path = export_snapshot(traffic_dir, to, since=_since(since))
    manifest = read_manifest(path)
    print_json({"snapshot": str(path), **{k: manifest[k] for k in ("requests", "labelled")}})


@snapshot_app.command("verify")
def verify_cmd(
    snapshot: Annotated[Path, typer.Argument(help="a snapshot directory (e.g. traffic).")],
) -> None:
    """Check a snapshot's traffic.jsonl against its manifest's sha256; print the manifest."""
    from textclf.monitoring.snapshot import read_manifest

    print_json(read_manifest(snapshot))


@snapshot_app.command("import")
def import_cmd(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="a storage prefix of snapshots (the latest complete one is taken), one "
            "snapshot, a URL (s3://..., gs://..., file://...; fsspec), or a traffic-log "
            "directory.",
        ),
    ],
    root: RootOpt = Path(),
    snapshot: Annotated[
        str | None,
        typer.Option("--snapshot", help="take this snapshot of the prefix (<UTC stamp>)."),
    ] = None,
    since: SinceOpt = None,
    commit: Annotated[
        bool, typer.Option("--commit/--no-commit", help="commit traffic.dvc and .gitignore.")
    ] = True,
    push: Annotated[
        bool, typer.Option("--push/--no-push", help="`dvc push traffic.dvc` to the remote.")
    ] = True,
) -> None:
    """Verify a snapshot, make it the DVC-tracked traffic/ directory, commit its pointer, push.

    The texts go to the DVC remote, never to git. `textclf replay` and `make report` read it.
    """
    from textclf.production.importer import import_snapshot

    done = import_snapshot(
        root, source, wanted=snapshot, since=_since(since), commit=commit, push=push
    )
    print_json(done.to_json())


def replay_cmd(
    traffic: TrafficOpt = Path("traffic"),
    root: RootOpt = Path(),
    params: ParamsOpt = Path("params.yaml"),
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="ONNX export to replay (default: artifacts/onnx)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="output directory (default: reports/replay)."),
    ] = None,
) -> None:
    """Replay recorded production requests through the workspace's exported model.

    Writes reports/replay/summary.json (requests, changed_share, the changed-answer matrix,
    changes per slice, the most confident changes, latency; with feedback, both models'
    accuracy and macro-F1 on the labelled requests with intervals) and summary.md.
    """
    from textclf.config.params import load_params
    from textclf.production.replay import replay, write
    from textclf.repo_paths import RepoPaths

    paths = RepoPaths(root)
    cfg = load_params(params if params.is_absolute() else root / params)
    traffic = traffic if traffic.is_absolute() else root / traffic
    summary = replay(traffic, model_dir or paths.onnx_dir, cfg.replay, cfg.slices)
    target = write(summary, out or paths.replay_dir)
    feedback = summary.feedback
    print_json(
        {
            "summary": str(target),
            "requests": summary.requests,
            "replayed": summary.replayed,
            "changed_share": summary.changed_share,
            "labelled": summary.labelled,
            **(
                {
                    "production_accuracy": feedback.models["production"].accuracy,
                    "candidate_accuracy": feedback.models["candidate"].accuracy,
                }
                if feedback
                else {}
            ),
        }
    )


def monitor_cmd(
    traffic: TrafficOpt = Path("traffic"),
    root: RootOpt = Path(),
    params: ParamsOpt = Path("params.yaml"),
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="drift reference profile (default: artifacts/drift/reference_profile.parquet).",
        ),
    ] = None,
    since: SinceOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="output directory (default: reports/monitor)."),
    ] = None,
) -> None:
    """Judge production: drift and live accuracy per model version -> one verdict.

    Writes reports/monitor/summary.json (verdict, reasons, figures) and summary.md, prints the
    JSON. Exit codes: 0 = ok or insufficient-data, 1 = drift, 3 = degraded (live accuracy too
    far below the model's test accuracy, or too many invalid traffic lines), 2 = the check
    failed (missing traffic or reference, bad params).
    """
    from textclf.config.params import load_params
    from textclf.monitoring.drift import default_reference
    from textclf.outputs.evaluate import EvaluateMetrics
    from textclf.production.monitor import EXIT_CODES, monitor, write
    from textclf.repo_paths import RepoPaths

    paths = RepoPaths(root)
    cfg = load_params(params if params.is_absolute() else root / params)
    traffic = traffic if traffic.is_absolute() else root / traffic
    metrics = paths.metrics
    test_accuracy = EvaluateMetrics.read(metrics).accuracy if metrics.is_file() else None
    summary = monitor(
        traffic,
        reference or default_reference(root),
        cfg.monitor,
        test_accuracy,
        since=_since(since),
    )
    write(summary, out or paths.monitor_dir)
    print_json({k: summary[k] for k in ("verdict", "reasons", "requests", "labelled")})
    raise typer.Exit(code=EXIT_CODES[summary["verdict"]])


retrain_app = typer.Typer(
    cls=ErrorReportingGroup,
    help="Retrain proposals: enough new labelled production rows become a pull request.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@retrain_app.command("propose")
def retrain_propose_cmd(
    traffic: Annotated[
        str,
        typer.Option(
            "--traffic",
            help="a snapshot (e.g. traffic/), a prefix of snapshots or a URL (the latest one, "
            "read, not imported), or a traffic-log directory; relative to --root.",
        ),
    ] = "traffic",
    root: Annotated[Path, typer.Option("--root", help="repository root (on main).")] = Path(),
    remote: Annotated[
        str, typer.Option("--remote", help="git remote (a name or URL) the branch is pushed to.")
    ] = "origin",
    body: Annotated[
        Path, typer.Option("--body", help="where the PR body (Markdown) is written.")
    ] = Path("reports/retrain/pr.md"),
    result: Annotated[
        Path, typer.Option("--result", help="where the JSON result is written.")
    ] = Path("reports/retrain/result.json"),
) -> None:
    """Propose a retrain on the snapshot's new labelled rows, as a branch to open a PR from.

    With at least monitor.retrain_min_labels labelled requests (with text) whose texts the data
    lacks: branch retrain/<UTC date> from HEAD, the rows into data/production/<stamp>.csv
    (listed in data.train_only_paths: train split only, the test split is main's), dvc add
    data, dvc repro, dvc push, the release overlays, one commit, git push to --remote; then the
    PR body (--body) and the result (--result: proposed, branch, rows, beats_main). Fewer rows:
    nothing is proposed, exit 0. A failure (exit 2) names what and the fix; main is untouched.
    """
    from textclf.production.retrain import propose

    if "://" not in traffic and not Path(traffic).is_absolute():
        traffic = str(root / traffic)
    done = propose(root, traffic, remote=remote, body=body, result=result)
    if not done.proposed:
        typer.echo(
            f"{done.rows} new labelled rows, fewer than monitor.retrain_min_labels = "
            f"{done.needed}: nothing proposed",
            err=True,
        )
    print_json(
        {
            k: v
            for k, v in done.to_json().items()
            if k in ("proposed", "rows", "needed", "branch", "beats_main", "body", "title")
        }
    )
