"""Traffic snapshots: a time window of recorded traffic, joined with its feedback, in one file.

A snapshot is a directory ``<UTC stamp>/`` (e.g. ``20250131T041700Z``) holding

- ``traffic.jsonl``: every valid traffic record of the window, as the service wrote it, plus
  ``"feedback": {"label": ..., "ts": ...}`` where a client sent the true label for its id;
- ``manifest.json``: the window, the counts (requests, labelled, skipped lines, feedback that
  matched no request, duplicate feedback) and the sha256 of ``traffic.jsonl``.

It is written into a temporary directory beside its final name and renamed once complete, the
manifest last, so a reader never sees half a snapshot. The drift CronJob writes one per run
(``--snapshot-to``; it has neither git nor DVC); ``textclf snapshot import`` verifies one and
makes it the DVC-tracked ``traffic/`` directory that ``textclf replay`` reads.

The join: feedback is read from every retained feedback file (feedback arrives after its
prediction, possibly after the window); per id the earliest feedback counts, later ones are
duplicates. A request without an id (records from before ids) cannot be labelled.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textclf import io
from textclf.errors import DataError
from textclf.monitoring.drift import _LineError, _lines, traffic_files, window_lines
from textclf.records import FEEDBACK_VERSION, is_feedback_file

SNAPSHOT_VERSION = 1
TRAFFIC_NAME = "traffic.jsonl"
MANIFEST_NAME = "manifest.json"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Feedback:
    """The first feedback per id, and what the other lines were."""

    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def _feedback_line(raw: bytes) -> dict[str, Any]:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _LineError("not_json", "not a UTF-8 JSON line") from None
    if not isinstance(record, dict) or record.get("v") != FEEDBACK_VERSION:
        raise _LineError("bad_version", f"not a feedback record of version {FEEDBACK_VERSION}")
    for key in ("id", "label", "ts"):
        if not isinstance(record.get(key), str) or not record[key]:
            raise _LineError(f"bad_{key}", f"'{key}' is missing or not a string")
    try:
        datetime.fromisoformat(record["ts"])
    except ValueError:
        raise _LineError("bad_ts", "'ts' is not an ISO 8601 timestamp") from None
    return record


def read_feedback(directory: Path) -> Feedback:
    """Every feedback file in ``directory`` (``*.feedback.jsonl[.N]``), first feedback per id."""
    out = Feedback()
    records: list[dict[str, Any]] = []
    for path in sorted(p for p in Path(directory).iterdir() if is_feedback_file(p.name)):
        try:
            with path.open("rb") as fh:
                for raw in _lines(fh):
                    if raw is not None and raw.isspace():
                        continue
                    out.lines += 1
                    try:
                        if raw is None:
                            raise _LineError("too_long", "line too long")
                        records.append(_feedback_line(raw))
                    except _LineError as bad:
                        out.skipped[bad.reason] += 1
        except FileNotFoundError:  # rotated away since it was listed
            continue
    for record in sorted(records, key=lambda r: _utc(r["ts"])):
        if record["id"] in out.by_id:
            out.duplicates += 1
        else:
            out.by_id[record["id"]] = record
    return out


def _utc(stamp: str) -> datetime:
    ts = datetime.fromisoformat(stamp)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


@dataclass
class _Counts:
    lines: int = 0
    requests: int = 0
    with_text: int = 0
    without_id: int = 0
    labelled: int = 0
    before_window: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    model_versions: Counter[str] = field(default_factory=Counter)
    first_ts: datetime | None = None
    last_ts: datetime | None = None


def _window_records(
    directory: Path, since: datetime | None, counts: _Counts
) -> Iterator[dict[str, Any]]:
    """The valid traffic records at or after ``since``, streamed file by file."""
    for path in traffic_files(directory):
        try:
            if since is not None and path.stat().st_mtime < since.timestamp():
                continue
            fh = path.open("rb")
        except FileNotFoundError:
            continue
        with fh:
            for record, _version, ts, row in window_lines(fh, path.name, since, None, counts):
                counts.requests += 1
                counts.with_text += row.text is not None
                counts.model_versions[row.model_version] += 1
                counts.first_ts = ts if counts.first_ts is None else min(counts.first_ts, ts)
                counts.last_ts = ts if counts.last_ts is None else max(counts.last_ts, ts)
                yield record


def write_snapshot(
    traffic_dir: Path,
    dest: Path,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
) -> Path:
    """Snapshot the window ``[since, now]`` of ``traffic_dir`` as ``dest`` (a directory, made
    atomically). Raises :class:`DataError` when the traffic directory is missing or has no logs."""
    traffic_dir = Path(traffic_dir)
    if not traffic_dir.is_dir() or not traffic_files(traffic_dir):
        raise DataError(
            f"{traffic_dir} has no *.jsonl traffic logs. Fix: pass the directory the service "
            "records to (TEXTCLF_TRAFFIC_DIR), or an exported snapshot."
        )
    now = now or datetime.now(UTC)
    feedback = read_feedback(traffic_dir)
    counts = _Counts()
    matched: set[str] = set()
    with io.atomic_dir(Path(dest)) as tmp:
        with (tmp / TRAFFIC_NAME).open("w", encoding="utf-8") as out:
            for record in _window_records(traffic_dir, since, counts):
                ident = record.get("id")
                given = feedback.by_id.get(ident) if isinstance(ident, str) else None
                if not isinstance(ident, str):
                    counts.without_id += 1
                elif given is not None:
                    record["feedback"] = {"label": given["label"], "ts": given["ts"]}
                    matched.add(ident)
                    counts.labelled += 1
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        manifest = {
            "version": SNAPSHOT_VERSION,
            "created": now.astimezone(UTC).isoformat(timespec="seconds"),
            "since": since.astimezone(UTC).isoformat(timespec="seconds") if since else None,
            "until": now.astimezone(UTC).isoformat(timespec="seconds"),
            "first_ts": counts.first_ts.isoformat(timespec="seconds") if counts.first_ts else None,
            "last_ts": counts.last_ts.isoformat(timespec="seconds") if counts.last_ts else None,
            "requests": counts.requests,
            "with_text": counts.with_text,
            "without_id": counts.without_id,
            "labelled": counts.labelled,
            "before_window": counts.before_window,
            "skipped": {
                "total": sum(counts.skipped.values()),
                "by_reason": dict(sorted(counts.skipped.items())),
                "examples": counts.examples,
            },
            "model_versions": dict(counts.model_versions),
            "feedback": {
                "lines": feedback.lines,
                "ids": len(feedback.by_id),
                "matched": len(matched),
                "unmatched": len(feedback.by_id) - len(matched),
                "duplicates": feedback.duplicates,
                "skipped": dict(sorted(feedback.skipped.items())),
            },
            "files": {TRAFFIC_NAME: {"sha256": _sha256(tmp / TRAFFIC_NAME)}},
        }
        io.write_json(tmp / MANIFEST_NAME, manifest)
    for path in (Path(dest) / TRAFFIC_NAME, Path(dest) / MANIFEST_NAME):
        path.chmod(0o600)  # production texts: private, like the traffic logs
    Path(dest).chmod(0o700)
    return Path(dest)


def export_snapshot(
    traffic_dir: Path, prefix: Path, *, since: datetime | None = None, now: datetime | None = None
) -> Path:
    """Write the window's snapshot to ``<prefix>/<UTC stamp of now>/``; its path."""
    now = now or datetime.now(UTC)
    name = now.astimezone(UTC).strftime(STAMP_FORMAT)
    return write_snapshot(traffic_dir, Path(prefix) / name, since=since, now=now)


def read_manifest(snapshot: Path) -> dict[str, Any]:
    """A snapshot's manifest, after checking ``traffic.jsonl`` against its sha256.

    Raises :class:`DataError` naming the snapshot and the fix when either is missing, the
    manifest is not this format, or the file's bytes differ (tampered or half copied).
    """
    snapshot = Path(snapshot)
    path = snapshot / MANIFEST_NAME
    fix = "Fix: import a complete snapshot again (`textclf snapshot import`)."
    try:
        manifest = io.read_json(path)
    except FileNotFoundError:
        raise DataError(
            f"{snapshot} has no {MANIFEST_NAME}: not a complete snapshot. {fix}"
        ) from None
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is unreadable ({err}). {fix}") from None
    if not isinstance(manifest, dict) or manifest.get("version") != SNAPSHOT_VERSION:
        raise DataError(f"{path} is not a version {SNAPSHOT_VERSION} snapshot manifest. {fix}")
    expected = (manifest.get("files") or {}).get(TRAFFIC_NAME, {}).get("sha256")
    data = snapshot / TRAFFIC_NAME
    if not data.is_file():
        raise DataError(f"{snapshot} has no {TRAFFIC_NAME}. {fix}")
    actual = _sha256(data)
    if actual != expected:
        raise DataError(
            f"{data} does not match its manifest (sha256 {actual[:12]}…, manifest says "
            f"{str(expected)[:12]}…): changed or half copied. {fix}"
        )
    return manifest


def is_snapshot(directory: Path) -> bool:
    """Whether ``directory`` is a snapshot (it has a manifest) rather than a traffic-log dir."""
    return (Path(directory) / MANIFEST_NAME).is_file()


def snapshot_records(snapshot: Path) -> Iterator[dict[str, Any]]:
    """The records of a verified snapshot (``traffic.jsonl``, one JSON object per line)."""
    read_manifest(snapshot)
    with (Path(snapshot) / TRAFFIC_NAME).open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise DataError(
                    f"{snapshot / TRAFFIC_NAME}:{line_no} is not JSON although the manifest "
                    "matches. Fix: write the snapshot again with `textclf snapshot import`."
                ) from None
            yield record
