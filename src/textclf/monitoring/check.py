"""``textclf drift-check``: the drift CronJob's command, in the drift image's own closure.

The drift image runs ``python -m textclf.monitoring.check`` (no training, serving or release
code in it); ``textclf drift-check`` in a checkout is the same command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from textclf.console import fail, print_json
from textclf.errors import TextclfError


def drift_check_cmd(
    traffic_dir: Annotated[
        Path,
        typer.Option(
            "--traffic-dir",
            help="directory of recorded traffic: *.jsonl files (and rotated "
            "*.jsonl.N), one JSON object per line.",
        ),
    ],
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="reference profile (default: $TEXTCLF_DRIFT_REFERENCE, else "
            "artifacts/drift/reference_profile.parquet).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="also write summary.json and Evidently's report.html here."),
    ] = None,
    params: Annotated[
        Path | None,
        typer.Option(
            "--params",
            help="take thresholds from this params file's drift section (default: the "
            "ones saved with the reference profile).",
        ),
    ] = None,
) -> None:
    """Check recorded production traffic for drift against the model's reference profile.

    Prints the verdict as JSON. Exit code 0: no drift; 1: drift detected; 2: bad input (missing
    directory or reference, empty or malformed log, fewer rows than drift.min_rows).
    """
    from textclf.config import load_params
    from textclf.monitoring.drift import default_reference
    from textclf.monitoring.drift import drift_check as check

    try:
        cfg = load_params(params).drift if params is not None else None
        summary = check(traffic_dir, reference or default_reference(), cfg, out)
    except TextclfError as err:
        fail(err)
    print_json(summary)
    raise typer.Exit(code=1 if summary["drift_detected"] else 0)


def main() -> None:
    """Entry point of the drift image."""
    typer.run(drift_check_cmd)


if __name__ == "__main__":
    main()
