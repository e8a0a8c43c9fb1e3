"""`dvc repro` of the real dvc.yaml in a temporary copy of the repo, on toy data, a tiny model."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, tiny_params

BIN = Path(sys.executable).parent


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def copy_repo(dest: Path) -> Path:
    """Copy the files git would see (tracked + untracked, not ignored) except the raw data."""
    listed = _run(["git", "ls-files", "-co", "--exclude-standard"], REPO).stdout.splitlines()
    for rel in listed:
        src = REPO / rel
        if rel.startswith(("data/", "dvc.lock")) or not src.is_file():
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


def declared_outputs(dvc_yaml: Path) -> list[str]:
    """Every out, metric and plot path declared by the stages of dvc.yaml."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    paths = []
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


def make_project_repo(
    factory: pytest.TempPathFactory, backbone: Path, epochs: int
) -> tuple[Path, dict[str, Any]]:
    """A git + DVC copy of this project on branch main: toy data (tracked by `dvc add`), the
    shipped params with tiny overrides, a local DVC remote, all committed (DVCLive needs a HEAD).
    Returns the root and the params written."""
    from textclf.testing import toy_frame

    root = copy_repo(factory.mktemp("repo"))
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    params = _merge(
        shipped, tiny_params(model={"backbone": str(backbone)}, train={"epochs": epochs})
    )
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "data").mkdir()
    toy_frame(240).to_csv(root / "data" / "toy.csv", index=False)
    _run(["git", "init", "-q", "-b", "main"], root)
    _run(["git", "config", "user.email", "t@example.com"], root)
    _run(["git", "config", "user.name", "t"], root)
    remote = str(factory.mktemp("remote"))
    _run(["dvc", "remote", "add", "--local", "-f", "-d", "local", remote], root)
    _run(["dvc", "add", "-q", "data"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "project, data and tiny params"], root)
    return root, params


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory: pytest.TempPathFactory, tiny_backbone: Path) -> Path:
    """A git + DVC repo holding this project, toy data and tiny params, after one `dvc repro`."""
    root, _ = make_project_repo(tmp_path_factory, tiny_backbone, epochs=3)
    first = _run(["dvc", "repro"], root)
    (root / "first_repro.log").write_text(first.stdout + first.stderr)
    return root


def test_repro_runs_every_stage_and_writes_every_output(pipeline_repo: Path) -> None:
    log = (pipeline_repo / "first_repro.log").read_text()
    stages = yaml.safe_load((pipeline_repo / "dvc.yaml").read_text())["stages"]
    for name in stages:
        assert f"Running stage '{name}'" in log, name
    missing = [
        p for p in declared_outputs(pipeline_repo / "dvc.yaml") if not (pipeline_repo / p).exists()
    ]
    assert not missing
    assert (pipeline_repo / "dvc.lock").is_file()


def test_second_repro_is_a_no_op(pipeline_repo: Path) -> None:
    again = _run(["dvc", "repro"], pipeline_repo)
    assert "Running stage" not in again.stdout
    status = _run(["dvc", "status", "--quiet"], pipeline_repo, check=False)
    assert status.returncode == 0, status.stdout


def test_metrics_and_plots_are_readable_by_dvc(pipeline_repo: Path) -> None:
    import json

    shown = json.loads(_run(["dvc", "metrics", "show", "--json"], pipeline_repo).stdout)
    metrics = shown[""]["data"]["reports/evaluate/metrics.json"]["data"]
    assert 0.0 <= metrics["macro_f1"] <= 1.0
    assert "baseline" in metrics
    plots = _run(["dvc", "plots", "show", "--json"], pipeline_repo).stdout
    assert "reports/evaluate/plots/confusion.csv" in plots


def test_param_change_reruns_only_the_stages_that_read_it(pipeline_repo: Path) -> None:
    params_file = pipeline_repo / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["evaluate"]["calibration_bins"] = 10
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        dry = _run(["dvc", "repro", "--dry"], pipeline_repo).stdout
    finally:
        params_file.write_text(original)
    assert "Running stage 'evaluate'" in dry
    assert "Running stage 'prepare'" not in dry
    assert "Running stage 'train'" not in dry


def test_summary_prints_the_run_figures_and_reports(pipeline_repo: Path) -> None:
    import json

    metrics = json.loads((pipeline_repo / "reports/evaluate/metrics.json").read_text())
    out = _run(["textclf", "summary"], pipeline_repo).stdout
    assert f"test macro-F1 {metrics['macro_f1']:.4f}" in out
    assert f"baseline {metrics['baseline']['macro_f1']:.4f}" in out
    for line in ("int8 agreement", "drift:", "slices:", "reports/model_card.md"):
        assert line in out
