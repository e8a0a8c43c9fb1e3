"""Pipeline overhead: a no-op ``dvc repro`` and the unchanged-model pull-request path.

When a pull request does not change the model, CI runs ``dvc status`` (nothing to rerun), a
``dvc repro`` that skips every stage, and rebuilds only the report (``textclf report``). This
times each command as a subprocess in the repository root, against the start-up cost of the same
CLI (``dvc --version``, ``textclf --help``) measured in the same run.

``dvc repro`` is run only when ``dvc status`` reports everything up to date, so the benchmark
never trains or exports; otherwise it is reported as skipped, with the stages that changed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from textclf.latency import format_ratio, ratio

DVC = (sys.executable, "-m", "dvc")
TEXTCLF = (sys.executable, "-m", "textclf")
ENV = {"DVC_NO_ANALYTICS": "1"}  # no network call from the timed commands


def _timed(cmd: list[str], cwd: Path, repeats: int) -> dict[str, Any]:
    """Run ``cmd`` ``repeats`` times; wall seconds (median), exit code and the last output."""
    seconds: list[float] = []
    while True:
        started = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, check=False, env={**os.environ, **ENV}
        )
        seconds.append(time.perf_counter() - started)
        if proc.returncode != 0 or len(seconds) >= repeats:
            break
    return {
        "command": " ".join(_shown(cmd)),
        "seconds": round(statistics.median(seconds), 3),
        "runs": [round(s, 3) for s in seconds],
        "returncode": proc.returncode,
        "stdout": proc.stdout,
        "stderr": proc.stderr,
    }


def _shown(cmd: list[str]) -> list[str]:
    """The command as a user types it (``dvc ...``, ``textclf ...``), not ``python -m``."""
    for prefix, name in ((DVC, "dvc"), (TEXTCLF, "textclf")):
        if tuple(cmd[: len(prefix)]) == prefix:
            return [name, *cmd[len(prefix) :]]
    return cmd


def _tail(text: str, lines: int = 4) -> str:
    """The last lines of a command's output on one line, safe inside a Markdown table cell."""
    return " ".join(text.strip().splitlines()[-lines:]).replace("|", "\\|")[-400:]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("stdout", "stderr")}


def dvc_status(root: Path, repeats: int = 1) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Time ``dvc status --json``; also return what it reports changed (None if it failed)."""
    row = _timed([*DVC, "status", "--json"], root, repeats)
    changed: dict[str, Any] | None = None
    if row["returncode"] == 0:
        try:
            changed = json.loads(row["stdout"] or "{}")
        except json.JSONDecodeError:
            changed = None
    return row, changed


def run(
    root: Path, quick: bool = False, repeats: int | None = None, base: str | None = None
) -> dict[str, Any]:
    """Time ``dvc status``, a no-op ``dvc repro`` (only if up to date) and ``textclf report``."""
    root = Path(root).resolve()
    repeats = repeats or (1 if quick else 3)
    results: dict[str, Any] = {"root": root, "repeats": repeats}
    dvc_ref = _timed([*DVC, "--version"], root, repeats)
    results["dvc_startup"] = _public(dvc_ref)
    status, changed = dvc_status(root, repeats)
    results["dvc_status"] = {
        **_public(status),
        "up_to_date": changed == {},
        "changed": sorted(changed) if changed else [],
    }
    if changed is None:
        reason = f"`dvc status` failed (exit {status['returncode']}): {_tail(status['stderr'])}"
    elif changed:
        reason = (
            f"`dvc status` reports changes in {sorted(changed)}: a repro would run them. "
            "Run `dvc repro` first; the benchmark never triggers training."
        )
    else:
        reason = None
    if reason is None:
        repro = _timed([*DVC, "repro"], root, repeats)
        _, after = dvc_status(root)
        results["noop_repro"] = {
            **_public(repro),
            "skipped": None,
            "still_up_to_date": after == {},
            "vs_dvc_startup": ratio(repro["seconds"], dvc_ref["seconds"]),
        }
        if repro["returncode"] != 0:
            results["noop_repro"]["skipped"] = f"`dvc repro` failed: {_tail(repro['stderr'])}"
    else:
        results["noop_repro"] = {"skipped": reason}

    cli_ref = _timed([*TEXTCLF, "--help"], root, repeats)
    results["textclf_startup"] = _public(cli_ref)
    with tempfile.TemporaryDirectory(prefix="textclf-bench-report-") as tmp:
        cmd = [*TEXTCLF, "report", "--root", str(root), "--out", str(Path(tmp) / "report.md")]
        report = _timed([*cmd, *(["--base", base] if base else [])], root, repeats)
    results["report"] = {
        **_public(report),
        "skipped": None,
        "vs_textclf_startup": ratio(report["seconds"], cli_ref["seconds"]),
    }
    if report["returncode"] != 0:
        results["report"]["skipped"] = (
            f"`textclf report` failed (exit {report['returncode']}): {_tail(report['stderr'])}"
        )
    parts = [results["dvc_status"], results["noop_repro"], results["report"]]
    ok = changed == {} and not any(p.get("skipped") for p in parts[1:])
    results["pr_path_seconds"] = round(sum(p["seconds"] for p in parts), 3) if ok else None
    return results


def markdown(results: dict[str, Any]) -> str:
    """A Markdown table of :func:`run`'s results."""
    r = results
    lines = [
        f"### Pipeline overhead (median of {r['repeats']} run(s), in the repository root)",
        "",
        "| command | seconds | reference | vs reference | note |",
        "|---|---:|---|---:|---|",
        f"| `dvc --version` | {r['dvc_startup']['seconds']:.2f} | (reference) | | |",
    ]
    status = r["dvc_status"]
    note = (
        "up to date"
        if status["up_to_date"]
        else (f"changed: {', '.join(status['changed'])}" if status["changed"] else "failed")
    )
    lines.append(
        f"| `dvc status` | {status['seconds']:.2f} | `dvc --version` | "
        f"{format_ratio(ratio(status['seconds'], r['dvc_startup']['seconds']))} | "
        f"{note} |"
    )
    repro = r["noop_repro"]
    if repro.get("skipped"):
        lines.append(f"| no-op `dvc repro` | skipped | | | {repro['skipped']} |")
    else:
        lines.append(
            f"| no-op `dvc repro` | {repro['seconds']:.2f} | `dvc --version` | "
            f"{format_ratio(repro['vs_dvc_startup'])} | goal < 2 s"
            f"{'' if repro['still_up_to_date'] else '; NOT up to date afterwards'} |"
        )
    lines.append(f"| `textclf --help` | {r['textclf_startup']['seconds']:.2f} | (reference) | | |")
    report = r["report"]
    if report.get("skipped"):
        lines.append(f"| `textclf report` | skipped | | | {report['skipped']} |")
    else:
        lines.append(
            f"| `textclf report` | {report['seconds']:.2f} | `textclf --help` | "
            f"{format_ratio(report['vs_textclf_startup'])} | rebuilt on every PR |"
        )
    total = r["pr_path_seconds"]
    lines.append(
        f"| unchanged-model PR path (status + no-op repro + report) | "
        f"{'n/a' if total is None else f'{total:.2f}'} | | | "
        f"{'' if total is not None else 'needs all three'} |"
    )
    return "\n".join(lines)
