"""The drift CronJob's check on recorded traffic: window, streaming, torn lines, record versions,
verdicts and exit codes, the Pushgateway push, and a memory bound that does not grow with traffic.

The reference profile here is synthetic (toy texts, Dirichlet probabilities): no model needed.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.traffic import drift_check_process, toy_probs, toy_reference, write_jsonl
from textclf.cli import app
from textclf.config.drift import DriftParams
from textclf.errors import ConfigError
from textclf.monitoring.check import EXIT_CODES, parse_since
from textclf.monitoring.drift import (
    FEATURES,
    Verdict,
    scan_traffic,
)
from textclf.monitoring.slices import text_features
from textclf_dev.toy import TOY_LABELS, toy_frame

#: Small enough that a few hundred rows are checked; the sample holds them all.
PARAMS = DriftParams(min_rows=50, max_rows=2000)
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _no_pushgateway(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Pushgateway set in the caller's shell is not pushed to (tests set their own)."""
    monkeypatch.delenv("TEXTCLF_PUSHGATEWAY", raising=False)
    monkeypatch.delenv("POD_NAMESPACE", raising=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_reference(tmp_path_factory.mktemp("reference") / "reference_profile.parquet", PARAMS)


def records(
    n: int,
    *,
    seed: int = 2,
    labels: list[str] | None = None,
    age: timedelta = timedelta(hours=1),
    version: int = 1,
    keep_text: bool = True,
) -> list[dict[str, Any]]:
    """``n`` traffic records as the service writes them, recorded ``age`` ago and after."""
    frame = toy_frame(n, seed=seed, labels=labels)
    probs = toy_probs(frame, seed)
    features = text_features(frame["text"].tolist()).to_dict("records")
    out = []
    for i, (text, p) in enumerate(zip(frame["text"], probs, strict=True)):
        record: dict[str, Any] = {
            "ts": (NOW - age + timedelta(milliseconds=i)).isoformat(timespec="milliseconds"),
            "label": TOY_LABELS[int(np.argmax(p))],
            "probabilities": dict(zip(TOY_LABELS, p.round(6).tolist(), strict=True)),
            "model_version": "m1",
        }
        if version == 2:
            record["v"] = 2
            record["features"] = features[i]
        if keep_text:
            record["text"] = text
        elif version == 2:
            record["text_hmac"] = f"{i:064x}"
        out.append(record)
    return out


def check(traffic: Path, reference: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    args = ["drift-check", "--traffic-dir", str(traffic), "--reference", str(reference), *extra]
    return CliRunner().invoke(app, args, env=env)


def params_file(tmp_path: Path, **drift: Any) -> Path:
    """params.yaml with these drift keys changed (one line each)."""
    text = (REPO / "params.yaml").read_text()
    for key, value in drift.items():
        lines = [ln for ln in text.splitlines() if ln.startswith(f"  {key}:")]
        assert len(lines) == 1, key
        text = text.replace(lines[0], f"  {key}: {value}")
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


# --- the window ------------------------------------------------------------------------------


def test_only_the_window_counts_and_old_files_are_not_opened(tmp_path: Path) -> None:
    traffic = tmp_path / "traffic"
    write_jsonl(traffic / "pod.jsonl", records(30, age=timedelta(days=3)) + records(40, seed=3))
    # An old rotation: anything in it would be counted (even its garbage) if it were read.
    old = write_jsonl(traffic / "pod.jsonl.1", records(50, seed=4), tail=b"\xff torn\n")
    stamp = (NOW - timedelta(days=2)).timestamp()
    os.utime(old, (stamp, stamp))
    scan = scan_traffic(traffic, TOY_LABELS, since=NOW - timedelta(hours=24))
    assert scan.files == ["pod.jsonl"] and scan.files_before_window == ["pod.jsonl.1"]
    assert (scan.lines, scan.before_window, scan.rows, scan.n_skipped) == (70, 30, 40, 0)
    assert scan.first_ts is not None and scan.first_ts >= NOW - timedelta(hours=24)
    # A wider window reads the old file too.
    wide = scan_traffic(traffic, TOY_LABELS, since=NOW - timedelta(days=7))
    assert wide.files == ["pod.jsonl.1", "pod.jsonl"] and wide.rows == 120
    assert wide.skipped == {"not_utf8": 1}


def test_since_takes_durations_and_timestamps() -> None:
    now = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2025-03-09T08:00:00+02:00", now) == datetime(2025, 3, 9, 6, tzinfo=UTC)
    assert parse_since("2025-03-09T08:00:00", now) == datetime(2025, 3, 9, 8, tzinfo=UTC)
    for bad, why in [
        ("yesterday", "neither a duration"),
        ("24 hours", "neither a duration"),
        ("0h", "empty window"),
        ("2025-04-01T00:00:00Z", "in the future"),
        ("99999999999d", "before year 1"),
    ]:
        with pytest.raises(ConfigError, match=why) as err:
            parse_since(bad, now)
        assert str(err.value).startswith(f"--since {bad!r}") and "Fix: " in str(err.value)


def test_a_bad_since_exits_2_and_names_the_option(tmp_path: Path, reference: Path) -> None:
    write_jsonl(tmp_path / "pod.jsonl", records(5))
    result = check(tmp_path, reference, "--since", "last week")
    assert result.exit_code == 2
    assert "--since 'last week'" in result.stderr and "Fix: pass a duration" in result.stderr


# --- torn and invalid lines ------------------------------------------------------------------

BAD_LINES = (
    b'{"ts": "2030-01-01T00:00:00Z", "label": 7}\n'  # bad label
    + json.dumps({**records(1)[0], "label": "angry", "probabilities": {"angry": 1.0}}).encode()
    + b"\n\x00\xff\xfe binary garbage \x89PNG\n"
    + b'["a list"]\n'
    + json.dumps({**records(1)[0], "v": 2, "text": None, "features": {"chars": -1}}).encode()
    + b'\n{"ts": "2030-01-01T00:00:00Z", "text": "SECRET-TEXT of a torn li'  # pod killed here
)
BAD_REASONS = {
    "bad_label": 1,
    "unknown_labels": 1,
    "not_utf8": 1,
    "not_object": 1,
    "bad_features": 1,
    "not_json": 1,
}


def test_torn_and_invalid_lines_are_skipped_counted_and_named(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "pod.jsonl", records(200), tail=b"\n" + BAD_LINES)
    scan = scan_traffic(tmp_path, TOY_LABELS, since=NOW - timedelta(days=1))
    assert scan.rows == 200 and scan.skipped == BAD_REASONS and scan.lines == 206
    assert scan.examples[0] == f"{log.name}:202: bad_label: 'label' (the predicted label) " + (
        "is missing or not a string"
    )
    assert [e.split(": ")[1] for e in scan.examples] == list(BAD_REASONS)[:5]
    assert scan.invalid_share == pytest.approx(6 / 206)


def test_too_many_invalid_lines_is_degraded_exit_3_and_fewer_is_ok(
    tmp_path: Path, reference: Path
) -> None:
    write_jsonl(tmp_path / "traffic" / "pod.jsonl", records(300), tail=BAD_LINES)  # 6 of 306: 2%
    degraded = check(tmp_path / "traffic", reference)
    assert degraded.exit_code == 3, degraded.output
    summary = json.loads(degraded.stdout)
    assert summary["verdict"] == "degraded" and summary["drift_detected"] is False
    assert summary["reasons"][0].startswith("6 of 306 lines in the window are invalid")
    assert summary["traffic"]["skipped"]["by_reason"] == BAD_REASONS
    assert summary["traffic"]["skipped"]["total"] == 6 and summary["rows"]["window"] == 300
    assert "SECRET-TEXT" not in degraded.stdout  # counts and reasons, never a text
    assert summary["columns"]  # still compared: the drift figures are there to read

    lenient = params_file(tmp_path, max_invalid_share=0.05)
    ok = check(tmp_path / "traffic", reference, "--params", str(lenient))
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["verdict"] == "ok"


def test_a_file_of_garbage_is_degraded_not_insufficient(tmp_path: Path, reference: Path) -> None:
    write_jsonl(tmp_path / "pod.jsonl", [], tail=BAD_LINES * 3)
    result = check(tmp_path, reference)
    assert result.exit_code == 3
    summary = json.loads(result.stdout)
    assert summary["verdict"] == "degraded" and len(summary["reasons"]) == 2
    assert "fewer than drift.min_rows = 50" in summary["reasons"][1]


def test_an_over_long_line_is_skipped_without_holding_it(tmp_path: Path) -> None:
    from textclf.monitoring import drift

    huge = b'{"ts": "' + b"9" * (drift.MAX_LINE_BYTES * 2) + b'"}\n'
    write_jsonl(tmp_path / "pod.jsonl", records(10), tail=huge + json.dumps(records(1)[0]).encode())
    scan = scan_traffic(tmp_path, TOY_LABELS)
    assert scan.rows == 11 and scan.skipped == {"too_long": 1}


# --- verdicts and exit codes ----------------------------------------------------------------


def test_every_verdict_has_an_exit_code() -> None:
    assert set(EXIT_CODES) == {v.value for v in Verdict}
    assert EXIT_CODES == {"ok": 0, "insufficient-data": 0, "drift": 1, "degraded": 3}


def test_traffic_like_the_reference_is_ok_with_exact_counts(
    tmp_path: Path, reference: Path
) -> None:
    write_jsonl(tmp_path / "traffic" / "pod-a.jsonl", records(400, seed=2))
    write_jsonl(tmp_path / "traffic" / "pod-b.jsonl", records(400, seed=3, age=timedelta(days=30)))
    result = check(tmp_path / "traffic", reference, "--since", "7d", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["verdict"], summary["reasons"], summary["drift_detected"]) == ("ok", [], False)
    traffic = summary["traffic"]
    assert (traffic["lines"], traffic["rows"], traffic["before_window"]) == (800, 400, 400)
    assert traffic["model_versions"] == {"m1": 400} and summary["model_version_mismatch"] is False
    assert sum(traffic["predictions"].values()) == 400
    assert summary["rows"] == {"reference": 1500, "current": 400, "window": 400}
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert (tmp_path / "report.html").stat().st_size > 10_000


def test_shifted_traffic_is_drift_exit_1(tmp_path: Path, reference: Path) -> None:
    write_jsonl(tmp_path / "pod.jsonl", records(300, labels=["positive"]))
    result = check(tmp_path, reference)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["verdict"] == "drift" and summary["drift_detected"] is True
    assert "critical column 'prediction' drifted" in summary["reasons"]
    shares = summary["prediction_shares"]["current"]  # over every row in the window
    assert shares["positive"] > 0.9 and sum(shares.values()) == pytest.approx(1.0)


def test_a_quiet_window_is_insufficient_data_exit_0(tmp_path: Path, reference: Path) -> None:
    write_jsonl(
        tmp_path / "traffic" / "pod.jsonl", records(20) + records(500, age=timedelta(days=9))
    )
    write_jsonl(tmp_path / "traffic" / "idle.jsonl", [])
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("yesterday's report")
    result = check(tmp_path / "traffic", reference, "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["verdict"] == "insufficient-data" and summary["drift_detected"] is False
    (reason,) = summary["reasons"]
    assert reason.startswith("20 valid row(s) since ") and "drift.min_rows = 50" in reason
    assert summary["traffic"]["before_window"] == 500  # the default window: a week
    assert json.loads((out / "summary.json").read_text()) == summary
    assert not (out / "report.html").exists(), "a stale report must not sit next to it"


def test_real_failures_exit_2(tmp_path: Path, reference: Path) -> None:
    missing_dir = check(tmp_path / "nope", reference)
    assert missing_dir.exit_code == 2 and "does not exist" in missing_dir.stderr
    no_logs = check(tmp_path, reference)
    assert no_logs.exit_code == 2 and "no *.jsonl traffic logs" in no_logs.stderr
    write_jsonl(tmp_path / "pod.jsonl", records(100))
    no_reference = check(tmp_path, tmp_path / "missing.parquet")
    assert no_reference.exit_code == 2 and "dvc repro drift" in no_reference.stderr
    (tmp_path / "broken.parquet").write_text("not parquet")
    unreadable = check(tmp_path, tmp_path / "broken.parquet")
    assert unreadable.exit_code == 2 and "not a readable Parquet file" in unreadable.stderr
    bad_params = check(tmp_path, reference, "--params", str(params_file(tmp_path, max_rows=5)))
    assert bad_params.exit_code == 2 and "drift.max_rows" in bad_params.stderr


# --- record versions --------------------------------------------------------------------------


def test_both_record_versions_are_read(tmp_path: Path, reference: Path) -> None:
    v2 = records(150, seed=3, version=2)
    v2[0]["features"]["chars"] = 9999  # features that disagree with the text: the text wins
    write_jsonl(tmp_path / "old-pod.jsonl", records(150, seed=2))
    write_jsonl(tmp_path / "new-pod.jsonl", v2)
    scan = scan_traffic(tmp_path, TOY_LABELS)
    assert scan.record_versions == {1: 150, 2: 150} and scan.rows_without_text == 0
    frame = scan.frame()
    assert frame["chars"].tolist() == frame["text"].str.len().tolist()
    result = check(tmp_path, reference)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["traffic"]["record_versions"] == {"1": 150, "2": 150}


def test_v2_records_without_text_use_their_features(tmp_path: Path, reference: Path) -> None:
    dropped = records(200, seed=3, version=2, keep_text=False)
    write_jsonl(tmp_path / "pod.jsonl", dropped + records(100, seed=4))
    scan = scan_traffic(tmp_path, TOY_LABELS)
    assert scan.rows == 300 and scan.rows_without_text == 200 and not scan.skipped
    frame = scan.frame()
    without = frame[frame["text"].isna()]
    assert without["chars"].tolist() == [r["features"]["chars"] for r in dropped]
    assert without["has_hashtag"].tolist() == [r["features"]["has_hashtag"] for r in dropped]
    assert frame["words"].dtype == np.int64 and frame["has_url"].dtype == bool

    # drift.text_content needs texts: without them the column is left out, and the summary
    # says so.
    result = check(tmp_path, reference, "--params", str(params_file(tmp_path, text_content="true")))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert "text" not in summary["columns"] and {"chars", "has_emoji"} <= set(summary["columns"])
    assert any("200 of 300 rows have no text" in n for n in summary["notes"])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"features": None}, "bad_features"),
        ({"features": {**dict.fromkeys(FEATURES, False), "chars": 3, "words": 1}}, "bad_features"),
        ({"features": {"chars": 3.5}}, "bad_features"),
        ({"v": 3}, "bad_version"),
        ({"ts": "noon"}, "bad_ts"),
        ({"model_version": 7}, "bad_model_version"),
        ({"probabilities": {"negative": 1.5}, "label": "negative"}, "bad_probabilities"),
        ({"text": "   "}, "bad_text"),
    ],
)
def test_a_bad_v2_field_is_named(tmp_path: Path, change: dict[str, Any], reason: str) -> None:
    (record,) = records(1, version=2, keep_text=False)
    write_jsonl(tmp_path / "pod.jsonl", [{**record, **change}])
    scan = scan_traffic(tmp_path, TOY_LABELS)
    assert scan.rows == 0 and scan.skipped == {reason: 1}
    assert scan.examples[0].startswith(f"pod.jsonl:1: {reason}: ")


def test_the_sample_is_bounded_seeded_and_counts_stay_exact(tmp_path: Path) -> None:
    rows = records(3000, seed=5)
    write_jsonl(tmp_path / "pod.jsonl", rows)

    def sample(seed: int) -> list[str]:
        scan = scan_traffic(tmp_path, TOY_LABELS, max_rows=500, seed=seed)
        assert scan.rows == 3000 and len(scan.sample) == 500
        assert sum(scan.predictions.values()) == 3000
        return [r.text or "" for r in scan.sample]

    first = sample(1)
    assert sample(1) == first, "the same input and seed give the same sample"
    assert sample(2) != first
    # Uniform: late rows are as likely as early ones (the halves hold about 250 each).
    late = sum(int(t.rsplit("#", 1)[1]) >= 1500 for t in first)
    assert 200 < late < 300


def test_sampled_rows_are_described_in_batches_and_texts_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Descriptors are computed as rows enter the sample; without keep_text no text stays."""
    from textclf.monitoring import drift

    write_jsonl(tmp_path / "pod.jsonl", records(3000, seed=5) + records(300, seed=6, version=2))
    kept = scan_traffic(tmp_path, TOY_LABELS, max_rows=500, seed=3)
    expected = kept.frame()
    assert expected[FEATURES].equals(text_features(expected["text"].tolist())[FEATURES])
    monkeypatch.setattr(drift, "FEATURE_BATCH", 7)  # many batches, rows replaced in between
    lean = scan_traffic(tmp_path, TOY_LABELS, max_rows=500, seed=3, keep_text=False)
    assert sum(r.text is not None for r in lean.sample) < 7  # only a pending batch has texts
    frame = lean.frame()
    assert frame["text"].isna().all()
    pd.testing.assert_frame_equal(frame.drop(columns="text"), expected.drop(columns="text"))


# --- the Pushgateway --------------------------------------------------------------------------


class _Gateway(http.server.BaseHTTPRequestHandler):
    pushes: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.pushes.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """A Pushgateway stand-in on 127.0.0.1: records each push's method, path and body."""
    pushes: list[tuple[str, str, bytes]] = []
    handler = type("Gateway", (_Gateway,), {"pushes": pushes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pushes
    finally:
        server.shutdown()
        server.server_close()


def test_the_outcome_is_pushed_to_the_pushgateway(
    tmp_path: Path, reference: Path, gateway: Any
) -> None:
    url, pushes = gateway
    write_jsonl(tmp_path / "pod.jsonl", records(20), tail=b"torn\n")  # 1 of 21 lines: degraded
    before = time.time()
    env = {"TEXTCLF_PUSHGATEWAY": url, "POD_NAMESPACE": "textclf-staging"}
    result = drift_check_process(tmp_path, reference, env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    ((method, path, body),) = pushes
    assert method == "PUT"
    assert path == "/metrics/job/textclf-drift-check/namespace/textclf-staging"
    lines = set(body.decode().splitlines())
    assert {
        'textclf_drift_verdict{verdict="degraded"} 1.0',
        'textclf_drift_verdict{verdict="ok"} 0.0',
        'textclf_drift_verdict{verdict="drift"} 0.0',
        'textclf_drift_verdict{verdict="insufficient-data"} 0.0',
        "textclf_drift_rows 20.0",
        "textclf_drift_skipped_lines 1.0",
    } <= lines
    (stamp,) = [ln for ln in lines if ln.startswith("textclf_drift_last_run_timestamp_seconds ")]
    assert before <= float(stamp.split()[1]) <= time.time()


def test_a_failed_push_is_logged_and_keeps_the_exit_code(tmp_path: Path, reference: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    write_jsonl(tmp_path / "pod.jsonl", records(20))
    result = drift_check_process(tmp_path, reference, "--pushgateway", closed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["verdict"] == "insufficient-data"
    assert f"pushing the metrics to {closed} failed" in result.stderr


# --- memory -----------------------------------------------------------------------------------

#: Runs drift-check in this process and writes its peak RSS (KiB) to $PEAK_FILE at exit.
_MEASURED = (
    "import os, resource, sys\n"
    "from textclf.monitoring.check import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    open(os.environ['PEAK_FILE'], 'w').write(str(peak))\n"
)


def synthetic_log(path: Path, n: int) -> Path:
    """``n`` v1 lines in the last hour, formatted directly (quick to write at 400k lines)."""
    words = [
        "the",
        "flight",
        "was",
        "great",
        "and",
        "i",
        "love",
        "this",
        "phone",
        "but",
        "my",
        "bag",
        "is",
        "delayed",
        "again",
    ]
    start = NOW - timedelta(hours=1)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            text = " ".join(words[(i * 7 + j) % len(words)] for j in range(3 + i % 9))
            p = 0.5 + (i % 40) / 100
            q = round((1 - p) / 2, 4)
            label = TOY_LABELS[i % 3]
            probs = ", ".join(f'"{lab}": {p if lab == label else q}' for lab in TOY_LABELS)
            ts = (start + timedelta(microseconds=i)).isoformat(timespec="microseconds")
            fh.write(
                f'{{"ts": "{ts}", "text": "{text} #{i}", "label": "{label}", '
                f'"probabilities": {{{probs}}}, "model_version": "m1"}}\n'
            )
    return path


def measure(traffic: Path, reference: Path, tmp_path: Path, *extra: str) -> tuple[float, float]:
    """Peak RSS (MiB) and wall seconds of one drift-check subprocess."""
    peak_file = tmp_path / f"peak-{traffic.name}"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _MEASURED, "--traffic-dir", str(traffic),
         "--reference", str(reference), "--since", "1d", *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "PEAK_FILE": str(peak_file)},
        timeout=900,
        check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert result.returncode in (0, 1), result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["traffic"]["rows"] == summary["traffic"]["lines"]
    return int(peak_file.read_text()) / 1024, seconds


@pytest.mark.parametrize(
    ("lines", "shipped"),
    [
        pytest.param(50_000, False, id="50k-vs-200k"),
        # params.yaml's drift.max_rows (50000): the figures behind the CronJob's memory limit.
        pytest.param(400_000, True, id="400k-vs-1.6M-shipped", marks=pytest.mark.slow),
    ],
)
def test_peak_memory_does_not_grow_with_the_traffic(
    tmp_path: Path, reference: Path, lines: int, shipped: bool
) -> None:
    """4x the lines, the same peak: the sample is bounded, the counts are a few integers."""
    extra = ("--params", str(REPO / "params.yaml")) if shipped else ()
    sizes = {"small": lines, "large": 4 * lines}
    figures = {}
    for name, n in sizes.items():
        traffic = tmp_path / name
        traffic.mkdir()
        synthetic_log(traffic / "pod.jsonl", n)
        figures[name] = measure(traffic, reference, tmp_path, *extra)
    (small_mib, small_s), (large_mib, large_s) = figures["small"], figures["large"]
    print(
        f"\ndrift-check peak RSS: {small_mib:.0f} MiB at {lines} lines, {large_mib:.0f} MiB at "
        f"{4 * lines} lines (x{large_mib / small_mib:.3f}); "
        f"{small_s:.1f} s and {large_s:.1f} s end to end ({4 * lines / large_s:.0f} lines/s "
        "for the larger file, start-up and Evidently included)"
    )
    assert large_mib / small_mib < 1.1
