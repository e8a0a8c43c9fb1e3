"""``textclf monitor``: the four verdicts on synthetic snapshots, the report, the exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.traffic import toy_probs, toy_reference
from textclf.cli import app
from textclf.config.drift import DriftParams
from textclf.config.monitor import MonitorParams
from textclf.monitoring.snapshot import write_snapshot
from textclf.production.monitor import EXIT_CODES, live_accuracy, monitor
from textclf.production.replay import Request
from textclf.records import feedback_record
from textclf.serving import ids
from textclf.serving.traffic import record
from textclf_dev.toy import TOY_LABELS, toy_frame

NOW = datetime.now(UTC)
KEY = b"monitor-test-key-0123456789abcdef"  # pragma: allowlist secret
CFG = MonitorParams(min_feedback=40, max_accuracy_drop=0.05)
TEST_ACCURACY = 0.9


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reference") / "reference_profile.parquet"
    return toy_reference(path, DriftParams(min_rows=50, max_rows=2000))


def _snapshot(
    tmp: Path, n: int, *, labels: list[str] | None = None, right: int = 0, wrong: int = 0
) -> Path:
    """A snapshot of ``n`` requests; ``right`` + ``wrong`` of them labelled by users."""
    frame = toy_frame(n, seed=2, labels=labels)
    probs = toy_probs(frame, 2)
    logs = tmp / "logs"
    logs.mkdir()
    traffic, feedback = [], []
    for i, (text, p) in enumerate(zip(frame["text"], probs, strict=True)):
        label = TOY_LABELS[int(np.argmax(p))]
        pid = ids.mint(KEY, "m1", label)
        scores = dict(zip(TOY_LABELS, p.round(6).tolist(), strict=True))
        ts = NOW - timedelta(hours=1) + timedelta(milliseconds=i)
        traffic.append(record(text, label, scores, "m1", ts, prediction_id=pid))
        if i < right + wrong:
            truth = label if i < right else TOY_LABELS[(TOY_LABELS.index(label) + 1) % 3]
            feedback.append(feedback_record(pid, truth, label, "m1", ts))
    (logs / "pod.jsonl").write_text("".join(json.dumps(r) + "\n" for r in traffic))
    (logs / "pod.feedback.jsonl").write_text("".join(json.dumps(r) + "\n" for r in feedback))
    return write_snapshot(logs, tmp / "snapshot")


def test_traffic_like_the_reference_is_ok(tmp_path: Path, reference: Path) -> None:
    summary = monitor(_snapshot(tmp_path, 300, right=60), reference, CFG, TEST_ACCURACY)
    assert summary["verdict"] == "ok" and summary["reasons"] == []
    live = summary["live_accuracy"]["m1"]
    assert (live["labelled"], live["accuracy"], live["judged"], live["degraded"]) == (
        60,
        1.0,
        True,
        False,
    )
    assert live["floor"] == pytest.approx(0.85)
    assert live["interval"][0] == pytest.approx(0.94, abs=0.01) and live["interval"][1] == 1.0


def test_shifted_traffic_is_drift(tmp_path: Path, reference: Path) -> None:
    summary = monitor(_snapshot(tmp_path, 300, labels=["positive"]), reference, CFG, TEST_ACCURACY)
    assert summary["verdict"] == "drift"
    assert "prediction" in summary["drift"]["drifted_columns"]
    assert summary["reasons"]


def test_live_accuracy_below_the_floor_is_degraded(tmp_path: Path, reference: Path) -> None:
    # 30 right of 50 labelled: 0.6 < 0.9 - 0.05, although the traffic itself looks normal.
    summary = monitor(_snapshot(tmp_path, 300, right=30, wrong=20), reference, CFG, TEST_ACCURACY)
    assert summary["verdict"] == "degraded"
    assert summary["drift"]["verdict"] == "ok"
    (reason,) = summary["reasons"]
    assert "model m1: live accuracy 0.6000 on 50 labelled requests is below 0.8500" in reason


def test_too_little_data_is_insufficient(tmp_path: Path, reference: Path) -> None:
    """Fewer rows than drift.min_rows and fewer labels than monitor.min_feedback: no verdict."""
    summary = monitor(_snapshot(tmp_path, 30, right=5, wrong=20), reference, CFG, TEST_ACCURACY)
    assert summary["verdict"] == "insufficient-data"
    assert summary["live_accuracy"]["m1"]["judged"] is False  # 25 labels, 5 right: not judged
    assert any("fewer than monitor.min_feedback = 40" in n for n in summary["notes"])


def test_the_same_low_accuracy_with_enough_labels_is_degraded() -> None:
    """Negative control of the test above: the floor is what makes it insufficient there."""
    requests = [Request("t", "negative", 0.9, "m1", "positive" if i < 20 else "negative")
                for i in range(25)]  # fmt: skip
    judged = live_accuracy(requests, MonitorParams(min_feedback=25), TEST_ACCURACY)
    assert judged["m1"]["judged"] is True and judged["m1"]["degraded"] is True
    assert live_accuracy(requests, MonitorParams(min_feedback=26), 0.9)["m1"]["judged"] is False


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["monitor", *args])


def test_the_command_writes_its_report_and_exits_with_the_verdict(
    tmp_path: Path, reference: Path
) -> None:
    drifted = _snapshot(tmp_path, 300, labels=["positive"])
    out = tmp_path / "out"
    result = _cli("--traffic", str(drifted), "--reference", str(reference), "--out", str(out))
    assert result.exit_code == EXIT_CODES["drift"] == 1, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "drift" and summary["reasons"]
    assert (out / "summary.md").read_text().startswith("### ⚠️ Production monitor: drift")
    missing = _cli("--traffic", str(tmp_path / "nope"), "--reference", str(reference))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def _make(target: str, root: Path, traffic: Path) -> subprocess.CompletedProcess[str]:
    venv = Path(sys.executable).parent.parent
    args = ["make", "-s", target, f"ROOT={root}", f"TRAFFIC={traffic}", f"VENV={venv}"]
    return subprocess.run(
        args,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_workflow_targets_pass_every_verdict_and_fail_a_failed_check(
    tmp_path: Path, reference: Path
) -> None:
    """monitor.yml: `make monitor-ci` exits 0 on drift (the issue job acts on the verdict), 2
    fails it; `make monitor` keeps the command's exit code; monitor-verdict feeds the output."""
    root = tmp_path / "checkout"
    (root / "artifacts" / "drift").mkdir(parents=True)
    shutil.copyfile(reference, root / "artifacts" / "drift" / "reference_profile.parquet")
    shutil.copyfile(REPO / "params.yaml", root / "params.yaml")
    drifted = _snapshot(tmp_path, 300, labels=["positive"])
    assert _make("monitor", root, drifted).returncode != 0  # exit 1: drift
    ci = _make("monitor-ci", root, drifted)
    assert ci.returncode == 0, ci.stdout + ci.stderr
    assert _make("monitor-verdict", root, drifted).stdout == "verdict=drift\n"
    failed = _make("monitor-ci", root, tmp_path / "no-such-traffic")
    assert failed.returncode != 0 and "does not exist" in failed.stderr
