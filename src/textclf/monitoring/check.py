"""``textclf drift-check``: the drift CronJob's command, in the drift image's own closure.

The drift image runs ``python -m textclf.monitoring.check`` (no training, serving or release
code in it); ``textclf drift-check`` in a checkout is the same command. With ``--pushgateway``
it also pushes its outcome to a Prometheus Pushgateway, which the alerts of
``deploy/base/prometheusrule.yaml`` read.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from textclf.console import ErrorReportingCommand, print_json
from textclf.errors import ConfigError

logger = logging.getLogger(__name__)

#: Exit code per verdict (:class:`textclf.monitoring.drift.Verdict`); 2 is a failure to check.
EXIT_CODES = {"ok": 0, "insufficient-data": 0, "drift": 1, "degraded": 3}
PUSHGATEWAY_ENV = "TEXTCLF_PUSHGATEWAY"
#: Set by the CronJob (downward API): the pushed series carry their namespace.
NAMESPACE_ENV = "POD_NAMESPACE"
PUSH_JOB = "textclf-drift-check"
_DURATION = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str, now: datetime) -> datetime:
    """The window's start: ``90m``, ``24h`` or ``7d`` before ``now``, or an ISO 8601 timestamp.

    A timestamp without a timezone is UTC. Raises :class:`ConfigError` naming ``--since``.
    """
    text = value.strip()
    fix = (
        "Fix: pass a duration such as 90m, 24h or 7d, or a timestamp such as "
        "2025-01-31T00:00:00Z (no timezone = UTC)."
    )
    if match := _DURATION.fullmatch(text):
        amount = int(match[1])
        if amount == 0:
            raise ConfigError(f"--since {value!r} is an empty window. {fix}")
        try:
            return now - timedelta(**{_UNITS[match[2]]: amount})
        except OverflowError:
            raise ConfigError(f"--since {value!r} reaches before year 1. {fix}") from None
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since {value!r} is neither a duration nor an ISO 8601 timestamp. {fix}"
        ) from None
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    if start > now:
        raise ConfigError(
            f"--since {value!r} is in the future (now is "
            f"{now.astimezone(UTC).isoformat(timespec='seconds')}). {fix}"
        )
    return start


def push_metrics(gateway: str, summary: Mapping[str, Any], timeout: float = 10.0) -> bool:
    """Push the check's outcome to a Pushgateway; a failure is logged and returns False."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

    registry = CollectorRegistry()
    verdict = Gauge(
        "textclf_drift_verdict",
        "1 for the last drift check's verdict, 0 for the other verdicts",
        ["verdict"],
        registry=registry,
    )
    for name in EXIT_CODES:
        verdict.labels(verdict=name).set(float(name == summary["verdict"]))
    Gauge(
        "textclf_drift_rows",
        "valid traffic rows in the last drift check's window",
        registry=registry,
    ).set(summary["rows"]["window"])
    Gauge(
        "textclf_drift_skipped_lines",
        "traffic lines the last drift check skipped as invalid (torn, not JSON, bad fields)",
        registry=registry,
    ).set(summary["traffic"]["skipped"]["total"])
    Gauge(
        "textclf_drift_last_run_timestamp_seconds",
        "when the last drift check finished (Unix time)",
        registry=registry,
    ).set(time.time())
    namespace = os.environ.get(NAMESPACE_ENV)
    try:
        push_to_gateway(
            gateway,
            job=PUSH_JOB,
            registry=registry,
            grouping_key={"namespace": namespace} if namespace else None,
            timeout=timeout,
        )
    except (OSError, ValueError) as err:  # URLError and HTTPError are OSErrors
        logger.warning(
            "drift-check: pushing the metrics to %s failed (%s); the verdict and exit code "
            "stand. Fix: check %s and that the job may reach the Pushgateway (NetworkPolicy).",
            gateway,
            err,
            PUSHGATEWAY_ENV,
        )
        return False
    return True


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
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="only traffic recorded at or after this counts: a duration back from now "
            "(90m, 24h, 7d) or an ISO 8601 timestamp (no timezone = UTC). Default: "
            "drift.window_hours.",
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
    snapshot_to: Annotated[
        Path | None,
        typer.Option(
            "--snapshot-to",
            help="also write the window's traffic joined with its feedback to "
            "<prefix>/<UTC stamp>/ (traffic.jsonl + manifest.json, complete or absent), for "
            "`textclf snapshot import`; a failed write exits 2 unless the verdict already "
            "fails the job.",
        ),
    ] = None,
    pushgateway: Annotated[
        str | None,
        typer.Option(
            "--pushgateway",
            envvar=PUSHGATEWAY_ENV,
            help="push the verdict gauges (textclf_drift_*) to this Prometheus Pushgateway, "
            "e.g. http://prometheus-pushgateway.monitoring.svc:9091; a failed push is "
            "logged and does not change the exit code.",
        ),
    ] = None,
) -> None:
    """Check the traffic recorded in a time window for drift against the model's reference profile.

    Reads the logs line by line (memory bounded by drift.max_rows), skips and counts torn or
    invalid lines, and prints the summary as JSON: verdict, reasons, notes and counts.

    Exit codes: 0 = ok, or insufficient-data (fewer than drift.min_rows valid rows in the
    window); 1 = drift; 3 = degraded (more than drift.max_invalid_share of the lines invalid);
    2 = the check failed (missing or unreadable reference, missing traffic directory or no
    traffic logs in it, bad option or params).
    """
    from textclf.config.base import load_section
    from textclf.config.drift import DriftParams
    from textclf.monitoring.drift import default_reference
    from textclf.monitoring.drift import drift_check as check

    now = datetime.now(UTC)
    start = parse_since(since, now) if since is not None else None
    cfg = load_section(params, "drift", DriftParams) if params is not None else None
    summary = check(traffic_dir, reference or default_reference(), cfg, out, since=start, now=now)
    if snapshot_to is not None:
        summary["snapshot"] = _snapshot(traffic_dir, snapshot_to, summary, now)
    print_json(summary)
    if pushgateway:
        push_metrics(pushgateway, summary)
    code = EXIT_CODES[summary["verdict"]]
    failed_snapshot = snapshot_to is not None and "error" in summary["snapshot"]
    raise typer.Exit(code=code or (2 if failed_snapshot else 0))


def _snapshot(
    traffic_dir: Path, prefix: Path, summary: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Write the checked window's snapshot under ``prefix``; where it went, or the error."""
    from textclf.errors import TextclfError
    from textclf.monitoring.snapshot import export_snapshot, read_manifest

    since = summary.get("window", {}).get("since")
    try:
        path = export_snapshot(
            traffic_dir, prefix, since=datetime.fromisoformat(since) if since else None, now=now
        )
        manifest = read_manifest(path)
    except (OSError, TextclfError) as err:
        logger.error(
            "drift-check: the traffic snapshot was not written to %s (%s). Fix: check that "
            "volume (mounted writable, space left).",
            prefix,
            err,
        )
        return {"error": str(err)}
    return {"path": str(path), "requests": manifest["requests"], "labelled": manifest["labelled"]}


def main() -> None:
    """Entry point of the drift image (``textclf drift-check`` is the same command)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(cls=ErrorReportingCommand)(drift_check_cmd)
    app()


if __name__ == "__main__":
    main()
