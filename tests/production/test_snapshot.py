"""Traffic snapshots: the join of traffic with feedback, the window, the manifest, atomicity and
privacy, and the drift CronJob's ``--snapshot-to``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.production.conftest import (
    KEY,
    NOW,
    PRODUCTION_VERSION,
    feedback_line,
    probabilities,
    traffic_line,
    write_jsonl,
)
from tests.traffic import drift_check_process
from textclf import io
from textclf.config.drift import DriftParams
from textclf.config.serve import TrafficLogParams
from textclf.errors import DataError
from textclf.monitoring.drift import build_profile, save_reference_profile
from textclf.monitoring.snapshot import (
    MANIFEST_NAME,
    TRAFFIC_NAME,
    export_snapshot,
    is_snapshot,
    read_feedback,
    read_manifest,
    snapshot_records,
    write_snapshot,
)
from textclf.serving import ids
from textclf.serving.traffic import FeedbackLog, TrafficLog
from textclf_dev.toy import TOY_LABELS, toy_frame

STAMP = re.compile(r"\d{8}T\d{6}Z")
OLD_VERSION = "prod-v0"


class Clock:
    """A settable clock for the record logs (what time their records are stamped with)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


def _by_text(snapshot: Path) -> dict[str, dict[str, Any]]:
    return {r["text"]: r for r in snapshot_records(snapshot)}


# --- the join ---------------------------------------------------------------------------------


@pytest.fixture
def joined_dir(tmp_path: Path) -> dict[str, Any]:
    """A traffic directory written by the service's own log writers: requests with and without
    ids, by two model versions, one before the window; feedback from two pods, a duplicate whose
    later copy sorts first by file, feedback for an unrecorded id, and invalid feedback lines."""
    traffic = tmp_path / "traffic"
    params = TrafficLogParams()
    clock = Clock(NOW - timedelta(hours=3))
    log = TrafficLog(traffic, params, "keep", name="pod-a.jsonl", clock=clock)
    made = {
        name: ids.mint(KEY, version, label)
        for name, version, label in [
            ("old", PRODUCTION_VERSION, "neutral"),
            ("a", PRODUCTION_VERSION, "positive"),
            ("b", PRODUCTION_VERSION, "negative"),
            ("d", OLD_VERSION, "neutral"),
            ("never recorded", PRODUCTION_VERSION, "neutral"),
        ]
    }

    def entry(text: str, label: str, version: str = PRODUCTION_VERSION) -> tuple[Any, ...]:
        return (text, label, probabilities(label), version, made[text])

    log.submit([entry("old", "neutral")])
    assert log.flush()
    clock.at = NOW - timedelta(minutes=30)
    log.submit(
        [
            entry("a", "positive"),
            entry("b", "negative"),
            ("c without id", "neutral", probabilities("neutral"), PRODUCTION_VERSION),
            entry("d", "neutral", OLD_VERSION),
        ]
    )
    log.close()
    with (traffic / "pod-a.jsonl").open("ab") as fh:
        fh.write(b'{"v": 2, "ts": "2030-01-01T00:00:00+00:00", "text": "torn li')  # pod killed

    # pod-a's file sorts first and holds the *later* feedback for "a": the earliest must win.
    later = FeedbackLog(traffic, params, name="pod-a.feedback.jsonl", clock=clock)
    clock.at = NOW - timedelta(minutes=10)
    later.submit([(made["a"], "negative", "positive", PRODUCTION_VERSION)])
    later.close()
    earlier = FeedbackLog(traffic, params, name="pod-b.feedback.jsonl", clock=clock)
    clock.at = NOW - timedelta(minutes=20)
    earlier.submit(
        [
            (made["a"], "neutral", "positive", PRODUCTION_VERSION),
            (made["b"], "negative", "negative", PRODUCTION_VERSION),
            (made["d"], "positive", "neutral", OLD_VERSION),
            (made["old"], "neutral", "neutral", PRODUCTION_VERSION),
            (made["never recorded"], "neutral", "neutral", PRODUCTION_VERSION),
        ]
    )
    earlier.close()
    with (traffic / "pod-a.feedback.jsonl").open("ab") as fh:
        fh.write(b"\x00\xff not json\n")
        fh.write(json.dumps({"v": 1, "id": made["b"], "ts": NOW.isoformat()}).encode() + b"\n")
        fh.write(json.dumps({**feedback_line(made["b"], "neutral", NOW), "v": 2}).encode() + b"\n")
    return {"dir": traffic, "ids": made}


def test_feedback_joins_by_id_first_one_wins_and_everything_else_is_counted(
    joined_dir: dict[str, Any], tmp_path: Path
) -> None:
    made = joined_dir["ids"]
    since = NOW - timedelta(hours=1)
    snap = write_snapshot(joined_dir["dir"], tmp_path / "snap", since=since, now=NOW)
    manifest = read_manifest(snap)

    assert manifest["requests"] == 4 and manifest["with_text"] == 4
    assert manifest["without_id"] == 1 and manifest["labelled"] == 3
    assert manifest["before_window"] == 1
    assert manifest["model_versions"] == {PRODUCTION_VERSION: 3, OLD_VERSION: 1}
    assert manifest["skipped"]["by_reason"] == {"not_json": 1}  # the torn traffic line
    assert manifest["feedback"] == {
        "lines": 9,
        "ids": 5,
        "matched": 3,
        "unmatched": 2,  # the request before the window, and an id never recorded
        "duplicates": 1,
        "skipped": {"bad_label": 1, "bad_version": 1, "not_json": 1},
    }
    assert manifest["since"] == since.isoformat(timespec="seconds")
    assert manifest["until"] == NOW.isoformat(timespec="seconds")

    rows = _by_text(snap)
    assert set(rows) == {"a", "b", "c without id", "d"}  # "old" is before the window
    # The earliest feedback wins (20 minutes ago, in pod-b's file), not the first file's.
    assert rows["a"]["feedback"] == {
        "label": "neutral",
        "ts": (NOW - timedelta(minutes=20)).isoformat(timespec="milliseconds"),
    }
    assert rows["a"]["id"] == made["a"] and rows["a"]["label"] == "positive"
    assert rows["b"]["feedback"]["label"] == "negative"  # the invalid lines for b did not count
    assert "id" not in rows["c without id"] and "feedback" not in rows["c without id"]
    # Feedback for an answer of the previous model joins, and the record keeps its version.
    assert rows["d"]["model_version"] == OLD_VERSION
    assert ids.verify(KEY, rows["d"]["id"]).model_version == OLD_VERSION
    assert rows["d"]["feedback"]["label"] == "positive"
    # The records are the service's, unchanged but for the feedback.
    assert {k: v for k, v in rows["b"].items() if k != "feedback"}.keys() == {
        "v",
        "ts",
        "id",
        "label",
        "probabilities",
        "model_version",
        "features",
        "text",
    }


def test_without_a_window_the_older_request_and_its_feedback_count(
    joined_dir: dict[str, Any], tmp_path: Path
) -> None:
    snap = write_snapshot(joined_dir["dir"], tmp_path / "snap", now=NOW)
    manifest = read_manifest(snap)
    assert manifest["since"] is None and manifest["before_window"] == 0
    assert (manifest["requests"], manifest["labelled"]) == (5, 4)
    assert (manifest["feedback"]["matched"], manifest["feedback"]["unmatched"]) == (4, 1)
    assert _by_text(snap)["old"]["feedback"]["label"] == "neutral"


def test_read_feedback_keeps_the_earliest_per_id_across_files(
    joined_dir: dict[str, Any],
) -> None:
    made = joined_dir["ids"]
    feedback = read_feedback(joined_dir["dir"])
    assert set(feedback.by_id) == {made[k] for k in ("a", "b", "d", "old", "never recorded")}
    assert feedback.by_id[made["a"]]["label"] == "neutral"
    assert feedback.duplicates == 1 and feedback.lines == 9
    assert sum(feedback.skipped.values()) == 3


def test_a_record_without_id_is_never_labelled_even_with_feedback_around(tmp_path: Path) -> None:
    traffic = tmp_path / "traffic"
    with_id = traffic_line("with id", "positive", ts=NOW - timedelta(minutes=5))
    without = traffic_line("without id", "positive", ts=NOW - timedelta(minutes=4), with_id=False)
    write_jsonl(traffic / "pod.jsonl", [with_id, without])
    write_jsonl(traffic / "pod.feedback.jsonl", [feedback_line(with_id["id"], "negative", NOW)])
    manifest = read_manifest(write_snapshot(traffic, tmp_path / "snap", now=NOW))
    assert (manifest["requests"], manifest["without_id"], manifest["labelled"]) == (2, 1, 1)
    rows = _by_text(tmp_path / "snap")
    assert "feedback" not in rows["without id"] and rows["with id"]["feedback"]["label"] == (
        "negative"
    )


# --- the manifest, atomicity, privacy ---------------------------------------------------------


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    traffic = tmp_path / "traffic"
    rows = [traffic_line(f"text {i}", "positive", ts=NOW - timedelta(minutes=i)) for i in range(5)]
    write_jsonl(traffic / "pod.jsonl", rows)
    write_jsonl(traffic / "pod.feedback.jsonl", [feedback_line(rows[0]["id"], "negative", NOW)])
    return write_snapshot(traffic, tmp_path / "snap", now=NOW)


def test_the_manifest_sha256_verifies_and_one_changed_byte_is_refused(snapshot: Path) -> None:
    data = snapshot / TRAFFIC_NAME
    manifest = read_manifest(snapshot)
    assert (
        manifest["files"][TRAFFIC_NAME]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    )
    assert manifest["requests"] == 5 and manifest["labelled"] == 1

    original = data.read_bytes()
    at = original.index(b"text 3")
    data.write_bytes(original[:at] + b"T" + original[at + 1 :])  # one byte: "text" -> "Text"
    with pytest.raises(DataError, match="does not match its manifest") as err:
        read_manifest(snapshot)
    assert str(data) in str(err.value) and "Fix: " in str(err.value)
    with pytest.raises(DataError, match="does not match its manifest"):
        list(snapshot_records(snapshot))  # what replay reads refuses it too

    data.write_bytes(original)  # the control: the same bytes verify again
    assert read_manifest(snapshot) == manifest


def test_a_snapshot_without_manifest_or_data_is_not_a_snapshot(
    snapshot: Path, tmp_path: Path
) -> None:
    half = tmp_path / "half"
    half.mkdir()
    (half / TRAFFIC_NAME).write_bytes((snapshot / TRAFFIC_NAME).read_bytes())
    assert not is_snapshot(half) and is_snapshot(snapshot)
    with pytest.raises(DataError, match=f"no {MANIFEST_NAME}: not a complete snapshot"):
        read_manifest(half)

    (snapshot / TRAFFIC_NAME).unlink()
    with pytest.raises(DataError, match=f"has no {TRAFFIC_NAME}"):
        read_manifest(snapshot)


def test_a_write_that_fails_midway_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic = tmp_path / "traffic"
    write_jsonl(traffic / "pod.jsonl", [traffic_line("a text", "positive", ts=NOW)])
    prefix = tmp_path / "prefix"
    prefix.mkdir()

    def disk_full(*_: Any, **__: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io, "write_json", disk_full)  # the manifest is written last
    with pytest.raises(OSError, match="No space left"):
        export_snapshot(traffic, prefix, now=NOW)
    assert list(prefix.iterdir()) == []  # neither the snapshot nor its temporary directory


def test_snapshots_are_private_whatever_the_umask(tmp_path: Path) -> None:
    traffic = tmp_path / "traffic"
    write_jsonl(traffic / "pod.jsonl", [traffic_line("a private text", "positive", ts=NOW)])
    old = os.umask(0)
    try:
        snap = write_snapshot(traffic, tmp_path / "snap", now=NOW)
    finally:
        os.umask(old)
    assert stat.S_IMODE(snap.stat().st_mode) == 0o700
    for name in (TRAFFIC_NAME, MANIFEST_NAME):
        assert stat.S_IMODE((snap / name).stat().st_mode) == 0o600, name


def test_export_names_the_snapshot_by_its_utc_stamp(tmp_path: Path) -> None:
    traffic = tmp_path / "traffic"
    write_jsonl(traffic / "pod.jsonl", [traffic_line("a text", "positive", ts=NOW)])
    at = datetime(2025, 1, 31, 6, 17, tzinfo=timezone(timedelta(hours=2)))  # 04:17 UTC
    path = export_snapshot(traffic, tmp_path / "prefix", now=at)
    assert path == tmp_path / "prefix" / "20250131T041700Z"
    assert read_manifest(path)["until"] == "2025-01-31T04:17:00+00:00"


def test_no_traffic_logs_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "traffic").mkdir()
    write_jsonl(tmp_path / "traffic" / "pod.feedback.jsonl", [])  # feedback is not traffic
    with pytest.raises(DataError, match=r"no \*\.jsonl traffic logs.*Fix: "):
        write_snapshot(tmp_path / "traffic", tmp_path / "snap")
    assert not (tmp_path / "snap").exists()


# --- drift-check --snapshot-to ----------------------------------------------------------------

#: Few rows are needed: the check says insufficient-data (exit 0) on the small windows here.
DRIFT = DriftParams(min_rows=50, max_rows=2000)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic reference profile (toy texts, confident probabilities): no model needed."""
    frame = toy_frame(200, seed=10)
    probs = pd.DataFrame([probabilities(label, 0.8) for label in frame["label"]])[TOY_LABELS]
    profile = build_profile(frame["text"].tolist(), probs.to_numpy(), TOY_LABELS)
    return save_reference_profile(
        profile,
        tmp_path_factory.mktemp("reference") / "reference_profile.parquet",
        {"model_version": PRODUCTION_VERSION, "labels": TOY_LABELS, "params": DRIFT.model_dump()},
    )


def drift_check(
    traffic: Path, reference: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The drift image's entry point in a process of its own; its JSON summary."""
    proc = drift_check_process(traffic, reference, *extra)
    try:
        summary = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"drift-check printed no JSON summary: {proc.stdout}{proc.stderr}")
    return proc, summary


@pytest.fixture
def small_traffic(tmp_path: Path) -> Path:
    traffic = tmp_path / "traffic"
    frame = toy_frame(12, seed=5)
    rows = [
        traffic_line(text, label, ts=NOW - timedelta(minutes=20) + timedelta(seconds=i))
        for i, (text, label) in enumerate(zip(frame["text"], frame["label"], strict=True))
    ]
    write_jsonl(traffic / "pod.jsonl", rows)
    write_jsonl(
        traffic / "pod.feedback.jsonl",
        [feedback_line(rows[i]["id"], "neutral", NOW - timedelta(minutes=5)) for i in range(4)],
    )
    return traffic


def test_drift_check_writes_the_windows_snapshot_and_a_failed_write_exits_2(
    small_traffic: Path, reference: Path, tmp_path: Path
) -> None:
    prefix = tmp_path / "snapshots"
    proc, summary = drift_check(small_traffic, reference, "--snapshot-to", str(prefix))
    assert proc.returncode == 0, proc.stderr
    assert summary["verdict"] == "insufficient-data"
    written = Path(summary["snapshot"]["path"])
    assert written.parent == prefix and STAMP.fullmatch(written.name)
    assert [p.name for p in prefix.iterdir()] == [written.name]  # no temporary left behind
    manifest = read_manifest(written)
    assert (manifest["requests"], manifest["labelled"]) == (12, 4)
    assert summary["snapshot"]["requests"] == 12 and summary["snapshot"]["labelled"] == 4
    # The snapshot is the checked window: the same since (drift.window_hours back) and until.
    assert summary["window"]["since"] is not None
    assert (manifest["since"], manifest["until"]) == (
        summary["window"]["since"],
        summary["window"]["until"],
    )

    # A prefix that cannot be written (a file stands there; root ignores permission bits).
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("in the way\n")
    proc, summary = drift_check(small_traffic, reference, "--snapshot-to", str(blocked))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert summary["verdict"] == "insufficient-data" and summary["snapshot"]["error"]
    assert "path" not in summary["snapshot"]
    assert "traffic snapshot was not written" in proc.stderr and "Fix: " in proc.stderr
