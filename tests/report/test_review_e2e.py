"""The review end to end: a baseline on main, a branch that changes a param, `dvc repro`, report.

Runs the real dvc.yaml twice in a temporary git + DVC copy of this project (toy data, tiny
model), so it is slow. The deltas in the report must be those of the two committed metrics files,
and the same as `dvc metrics diff` computes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_pipeline import _run, make_project_repo

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

    # The proposal: train longer on a branch and reproduce (prepare is skipped).
    _run(["git", "checkout", "-qb", "train-longer"], root)
    params["train"]["epochs"] = 6
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    second = _run(["dvc", "repro"], root)
    assert "Running stage 'train'" in second.stdout
    assert "Running stage 'prepare'" not in second.stdout

    report = _run(["textclf", "report", "--base", "main"], root)
    assert "wrote reports/pr/report.md" in report.stdout
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
    ):
        assert section in md, section
