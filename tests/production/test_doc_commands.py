"""docs/production.md's commands, run as shown: import a snapshot, then replay it (real params)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.exported import TinyExport, exported
from textclf.config.drift import DriftParams
from textclf.inference import OnnxClassifier
from textclf.monitoring.drift import build_profile, save_reference_profile
from textclf.monitoring.snapshot import export_snapshot
from textclf.records import feedback_record
from textclf.serving import ids
from textclf.serving.traffic import record
from textclf_dev.toy import TOY_LABELS, toy_frame

__all__ = ["exported"]

DOC = REPO / "docs" / "production.md"
DOC_PREFIX = "/mnt/textclf-snapshots"  # the prefix the doc's import example names
BIN = Path(sys.executable).parent


def _doc_commands() -> list[str]:
    """The commands of the doc's bash blocks, comments dropped, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text("utf-8"), flags=re.DOTALL)
    lines = [ln.split("  #")[0].strip() for block in blocks for ln in block.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _repo(tmp: Path, export: TinyExport) -> Path:
    """A git + DVC repository with the real params.yaml, a local remote and the tiny export."""
    root = tmp / "repo"
    root.mkdir()
    for args in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "config", "user.email", "t@example.com"],
        ["git", "config", "user.name", "t"],
        [sys.executable, "-m", "dvc", "init", "-q"],
        [sys.executable, "-m", "dvc", "remote", "add", "-d", "review", str(tmp / "remote")],
    ):
        assert _run(args, root).returncode == 0, args
    shutil.copyfile(REPO / "params.yaml", root / "params.yaml")
    _run(["git", "add", "-A"], root)
    assert _run(["git", "commit", "-q", "-m", "init"], root).returncode == 0
    shutil.copytree(export.onnx_dir, root / "artifacts" / "onnx")
    return root


def _prefix(tmp: Path, export: TinyExport) -> tuple[Path, int, int]:
    """A snapshot prefix as the drift CronJob leaves it: 40 requests, every 4th labelled."""
    traffic = tmp / "traffic-logs"
    traffic.mkdir()
    texts = toy_frame(40, seed=3)["text"].tolist()
    model = OnnxClassifier(export.onnx_dir, "int8")
    probs = model.predict_proba(texts)
    key = b"doc-commands-test-key-0123456789"
    lines, feedback = [], []
    for i, (text, row) in enumerate(zip(texts, probs, strict=True)):
        label = model.labels[int(row.argmax())]
        pid = ids.mint(key, model.version, label)
        scores = dict(zip(model.labels, map(float, row), strict=True))
        lines.append(json.dumps(record(text, label, scores, model.version, prediction_id=pid)))
        if i % 4 == 0:
            feedback.append(json.dumps(feedback_record(pid, "negative", label, model.version)))
    (traffic / "pod-1.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (traffic / "pod-1.feedback.jsonl").write_text("\n".join(feedback) + "\n", encoding="utf-8")
    prefix = tmp / "snapshots"
    export_snapshot(traffic, prefix)
    return prefix, len(lines), len(feedback)


def test_the_docs_commands_import_and_replay_a_snapshot(
    tmp_path: Path, exported: TinyExport
) -> None:
    commands = _doc_commands()
    assert [c.split()[:3] for c in commands] == [
        ["textclf", "snapshot", "import"],
        ["textclf", "replay", "--traffic"],
        ["textclf", "monitor", "--traffic"],
    ], commands
    root = _repo(tmp_path, exported)
    prefix, requests, labelled = _prefix(tmp_path, exported)
    _reference(root, exported)
    for command in commands:
        assert DOC_PREFIX in command or "import" not in command
        args = command.replace(DOC_PREFIX, str(prefix)).split()
        result = _run(args, root)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    # The import: traffic/ tracked by its own traffic.dvc, committed; the texts in the remote.
    last = _run(["git", "show", "--name-only", "--format=%s", "HEAD"], root).stdout.split()
    assert "traffic.dvc" in last and ".gitignore" in last
    assert _run(["git", "ls-files", "traffic"], root).stdout == ""
    status = _run([sys.executable, "-m", "dvc", "status", "-c", "traffic.dvc"], root)
    assert status.returncode == 0 and "new" not in status.stdout, status.stdout
    # The replay: every request, none changed (the same model answered them), the feedback.
    summary = json.loads((root / "reports" / "replay" / "summary.json").read_text("utf-8"))
    assert summary["requests"] == requests
    assert summary["changed_share"] == 0.0
    assert summary["labelled"] == labelled
    assert set(summary["feedback"]["models"]) == {"production", "candidate"}
    assert (
        (root / "reports" / "replay" / "summary.md")
        .read_text("utf-8")
        .startswith(f"### On {requests} recent production requests")
    )
    # The monitor: 40 requests and 10 labels are under drift.min_rows and monitor.min_feedback.
    verdict = json.loads((root / "reports" / "monitor" / "summary.json").read_text("utf-8"))
    assert verdict["verdict"] == "insufficient-data" and verdict["labelled"] == labelled


def _reference(root: Path, export: TinyExport) -> None:
    """The drift reference profile `textclf monitor` compares with (the drift stage's output)."""
    frame = toy_frame(200, seed=5)
    probs = OnnxClassifier(export.onnx_dir, "int8").predict_proba(frame["text"].tolist())
    profile = build_profile(frame["text"].tolist(), probs, TOY_LABELS)
    meta = {"model_version": "tiny", "labels": TOY_LABELS, "params": DriftParams().model_dump()}
    target = root / "artifacts" / "drift" / "reference_profile.parquet"
    target.parent.mkdir(parents=True)
    save_reference_profile(profile, target, meta)
