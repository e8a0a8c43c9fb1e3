"""The review end to end: a baseline on main, a branch that changes a param, `dvc repro`, report.

Runs the real dvc.yaml twice in a temporary git + DVC copy of this project (toy data, tiny
model), so it is slow. The deltas in the report must be those of the two committed metrics files,
and the same as `dvc metrics diff` computes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_pipeline import _run, make_project_repo
from textclf.inference import OnnxClassifier
from textclf.records import feedback_record
from textclf.serving import ids
from textclf.serving.traffic import record
from textclf_dev.toy import toy_frame

pytestmark = pytest.mark.slow


def _headline(report: str, label: str) -> list[str]:
    rows = [r for r in report.splitlines() if r.startswith(f"| {label} |")]
    assert len(rows) == 1, report[:3000]
    return [cell.strip() for cell in rows[0].strip("|").split("|")]


def test_report_against_main_shows_the_real_deltas_of_a_param_change(
    tmp_path_factory: pytest.TempPathFactory, tiny_backbone: Path
) -> None:
    root, params = make_project_repo(tmp_path_factory, tiny_backbone, epochs=2)

    # The baseline: reproduce and commit dvc.lock and the metric files on main.
    _run(["dvc", "repro"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "baseline model"], root)
    # Production: main's model answered 60 requests, users labelled 20; the snapshot is imported
    # on main and the replay gates are on there (the review uses the base's).
    requests, labelled = _record_production(root, tmp_path_factory.mktemp("traffic"))
    _run(["textclf", "snapshot", "import", "--from", str(root.parent / "traffic-logs")], root)
    gate_file = root / "gate.yaml"
    gate_file.write_text(
        gate_file.read_text()
        .replace("max_replay_changed_share: null", "max_replay_changed_share: 1.0")
        .replace("min_live_accuracy_delta: null", "min_live_accuracy_delta: -1.0")
    )
    _run(["git", "commit", "-qam", "gate on production replay"], root)

    # The proposal: train longer on a branch and reproduce (prepare is skipped).
    _run(["git", "checkout", "-qb", "train-longer"], root)
    params["train"]["epochs"] = 6
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    second = _run(["dvc", "repro"], root)
    assert "Running stage 'train'" in second.stdout
    assert "Running stage 'prepare'" not in second.stdout

    # `make report` replays the snapshot in traffic/ through the branch's model first.
    venv = Path(sys.executable).parent.parent
    report = _run(["make", "--no-print-directory", "report", "BASE=main", f"VENV={venv}"], root)
    assert "wrote reports/pr/report.md" in report.stdout
    replay = json.loads((root / "reports" / "replay" / "summary.json").read_text())
    assert replay["requests"] == requests and replay["labelled"] == labelled
    md = (root / "reports" / "pr" / "report.md").read_text()
    gate = _run(["textclf", "gate", "--base", "main"], root, check=False)
    verdict = json.loads((root / "reports" / "pr" / "gate.json").read_text())
    assert gate.returncode == (0 if verdict["passed"] else 1), gate.stdout + gate.stderr
    assert md.splitlines()[2].startswith(
        "### ✅ Promotion gate passed" if verdict["passed"] else "### ❌ Promotion gate failed"
    )

    old = json.loads(_run(["git", "show", "main:reports/evaluate/metrics.json"], root).stdout)
    new = json.loads((root / "reports" / "evaluate" / "metrics.json").read_text())
    for label, key in (("test macro-F1", "macro_f1"), ("test accuracy", "accuracy")):
        cells = _headline(md, label)
        assert cells[1] == f"{old[key]:.4f}" and cells[2] == f"**{new[key]:.4f}**", cells
        diff = new[key] - old[key]
        assert cells[3] == (f"{diff:+.2e}" if diff and abs(diff) < 1e-3 else f"{diff:+.4f}")

    # DVC computes the same difference from the same two files.
    dvc_diff = json.loads(_run(["dvc", "metrics", "diff", "main", "--json"], root).stdout)
    macro = dvc_diff["reports/evaluate/metrics.json"]["macro_f1"]
    assert macro["old"] == pytest.approx(old["macro_f1"])
    assert macro["new"] == pytest.approx(new["macro_f1"])

    assert "| `train.epochs` | `2` | `6` |" in md
    old_train = json.loads(_run(["git", "show", "main:reports/train/metrics.json"], root).stdout)
    new_train = json.loads((root / "reports" / "train" / "metrics.json").read_text())
    assert new_train["step"] > old_train["step"]
    assert "base ended at" in md or "second = base" in md  # base curve shown or summarised
    assert "Data version: unchanged, `data.dvc` md5" in md
    for section in (
        "### Per class",
        "### Confusion matrix",
        "### Training curves",
        "### Slices",
        "### What the model looks at (SHAP)",
        "### Drift",
        "### Export: parity, size, latency",
        "### Data",
        f"### On {requests} recent production requests",
    ):
        assert section in md, section
    checks = {c["name"]: c for c in verdict["checks"]}
    assert checks["changed production answers"]["passed"] is True
    assert checks["live accuracy vs production"]["passed"] is True


def _record_production(root: Path, scratch: Path) -> tuple[int, int]:
    """Traffic and feedback logs of root's exported model, as the service writes them, in
    ``root.parent / "traffic-logs"``; the request and labelled counts."""
    logs = root.parent / "traffic-logs"
    logs.mkdir()
    model = OnnxClassifier(root / "artifacts" / "onnx", "int8")
    frame = toy_frame(60, seed=11)
    probs = model.predict_proba(frame["text"].tolist())
    key = scratch.name.encode().ljust(16, b"k")
    traffic, feedback = [], []
    for i, (text, truth, row) in enumerate(zip(frame["text"], frame["label"], probs, strict=True)):
        label = model.labels[int(row.argmax())]
        pid = ids.mint(key, model.version, label)
        scores = dict(zip(model.labels, map(float, row), strict=True))
        traffic.append(json.dumps(record(text, label, scores, model.version, prediction_id=pid)))
        if i % 3 == 0:
            feedback.append(json.dumps(feedback_record(pid, truth, label, model.version)))
    (logs / "pod-1.jsonl").write_text("\n".join(traffic) + "\n")
    (logs / "pod-1.feedback.jsonl").write_text("\n".join(feedback) + "\n")
    return len(traffic), len(feedback)
