"""``textclf monitor``: one verdict on recorded production traffic and its feedback.

Runs the drift check (the checkout's reference profile, the ``drift`` thresholds saved with it)
and, per model version, the live accuracy on the requests users labelled, against the test
accuracy of the checkout's model. The verdict, most severe first:

- ``degraded``: a model version with at least ``monitor.min_feedback`` labelled requests is
  more than ``monitor.max_accuracy_drop`` below that test accuracy, or more of the traffic
  lines are invalid than ``drift.max_invalid_share``;
- ``drift``: the drift check found drift;
- ``ok``: the drift check, or the live accuracy of some model version, was judged and passed;
- ``insufficient-data``: neither had enough data.

Writes ``reports/monitor/summary.json`` and ``summary.md`` (atomically). Exit codes as
``drift-check``'s: 0 ok or insufficient-data, 1 drift, 3 degraded, 2 the check failed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scipy.stats import binomtest

from textclf import io
from textclf.config.monitor import MonitorParams
from textclf.monitoring.drift import drift_check
from textclf.monitoring.snapshot import is_snapshot
from textclf.production.replay import Request, load_requests

SUMMARY_NAME = "summary.json"
MARKDOWN_NAME = "summary.md"
EXIT_CODES = {"ok": 0, "insufficient-data": 0, "drift": 1, "degraded": 3}


def live_accuracy(
    requests: list[Request], cfg: MonitorParams, test_accuracy: float | None
) -> dict[str, dict[str, Any]]:
    """Per model version: labelled requests, live accuracy with its exact interval, and whether
    it was judged (enough feedback) and degraded (too far below ``test_accuracy``)."""
    by_version: dict[str, list[bool]] = defaultdict(list)
    for r in requests:
        if r.truth is not None:
            by_version[r.model_version].append(r.truth == r.label)
    out = {}
    for version, right in sorted(by_version.items()):
        n, k = len(right), sum(right)
        ci = binomtest(k, n).proportion_ci(confidence_level=cfg.confidence, method="exact")
        judged = n >= cfg.min_feedback and test_accuracy is not None
        floor = None if test_accuracy is None else test_accuracy - cfg.max_accuracy_drop
        out[version] = {
            "labelled": n,
            "accuracy": k / n,
            "interval": [float(ci.low), float(ci.high)],
            "judged": judged,
            "degraded": bool(judged and floor is not None and k / n < floor),
            "floor": floor,
        }
    return out


def monitor(
    traffic: Path,
    reference: Path,
    cfg: MonitorParams,
    test_accuracy: float | None,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The verdict on ``traffic`` (a traffic-log directory or a snapshot); see the module doc."""
    now = now or datetime.now(UTC)
    if since is None and is_snapshot(traffic):
        since = datetime(1970, 1, 1, tzinfo=UTC)  # a snapshot is one window: all of it counts
    drift = drift_check(traffic, reference, since=since, now=now)
    labelled, manifest = load_requests(traffic, labelled_only=True)
    accuracy = live_accuracy(labelled, cfg, test_accuracy)
    reasons = list(drift["reasons"]) if drift["verdict"] != "ok" else []
    for version, a in accuracy.items():
        if a["degraded"]:
            reasons.append(
                f"model {version}: live accuracy {a['accuracy']:.4f} on {a['labelled']} labelled "
                f"requests is below {a['floor']:.4f} (test accuracy {test_accuracy:.4f} - "
                f"monitor.max_accuracy_drop {cfg.max_accuracy_drop:g})"
            )
    notes = list(drift["notes"])
    if test_accuracy is None:
        notes.append("no reports/evaluate/metrics.json: live accuracy is shown, not judged")
    for version, a in accuracy.items():
        if not a["judged"] and test_accuracy is not None:
            notes.append(
                f"model {version}: {a['labelled']} labelled request(s), fewer than "
                f"monitor.min_feedback = {cfg.min_feedback}: live accuracy not judged"
            )
    verdict = _verdict(drift["verdict"], accuracy)
    return {
        "verdict": verdict,
        "reasons": reasons,
        "notes": notes,
        "drift": {k: drift[k] for k in ("verdict", "reasons", "rows", "window") if k in drift}
        | {"drifted_columns": drift.get("drifted_columns", [])},
        "live_accuracy": accuracy,
        "test_accuracy": test_accuracy,
        "requests": manifest["requests"],
        "labelled": sum(a["labelled"] for a in accuracy.values()),
        "snapshot": {k: manifest.get(k) for k in ("since", "until", "first_ts", "last_ts")},
        "checked": now.astimezone(UTC).isoformat(timespec="seconds"),
    }


def _verdict(drift_verdict: str, accuracy: dict[str, dict[str, Any]]) -> str:
    if drift_verdict == "degraded" or any(a["degraded"] for a in accuracy.values()):
        return "degraded"
    if drift_verdict == "drift":
        return "drift"
    if drift_verdict == "ok" or any(a["judged"] for a in accuracy.values()):
        return "ok"
    return "insufficient-data"


def render_markdown(summary: dict[str, Any]) -> str:
    """The verdict as Markdown (the monitor issue's body)."""
    from textclf.report.markdown import Table, esc, fmt

    icon = {"ok": "✅", "insufficient-data": "⏸️", "drift": "⚠️", "degraded": "❌"}
    lines = [
        f"### {icon[summary['verdict']]} Production monitor: {summary['verdict']}",
        "",
        f"{fmt(summary['requests'])} requests, {fmt(summary['labelled'])} labelled; checked "
        f"{esc(summary['checked'])}.",
    ]
    lines += ["", *[f"- {esc(r)}" for r in summary["reasons"]]] if summary["reasons"] else []
    table = Table(["model version", "labelled", "live accuracy", "interval", "judged"])
    for version, a in summary["live_accuracy"].items():
        low, high = a["interval"]
        table.rows.append(
            [
                esc(version),
                fmt(a["labelled"]),
                fmt(a["accuracy"]),
                f"[{fmt(low)}, {fmt(high)}]",
                ("❌ degraded" if a["degraded"] else "yes") if a["judged"] else "no",
            ]
        )
    lines += ["", *table.render()] if table.rows else []
    drift = summary["drift"]
    lines += [
        "",
        f"Drift check: {esc(drift['verdict'])}"
        + (f" (drifted: {esc(', '.join(drift['drifted_columns']))})" if drift["drifted_columns"]
           else "")
        + ".",
    ]  # fmt: skip
    lines += [f"- {esc(n)}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


def write(summary: dict[str, Any], out_dir: Path) -> Path:
    """``summary.json`` and ``summary.md`` in ``out_dir``; the JSON's path."""
    path = io.write_json(Path(out_dir) / SUMMARY_NAME, summary)
    io.write_text(Path(out_dir) / MARKDOWN_NAME, render_markdown(summary))
    return path
