"""`dvc repro` of the real dvc.yaml in a temporary copy of the repo, on toy data, a tiny model."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, expectations_yaml, tiny_params

BIN = Path(sys.executable).parent


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "400",  # `dvc exp show` draws its table to the terminal's width
    }
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def textclf_yaml(path: Path) -> Any:
    """A YAML file read the way textclf reads params (YAML 1.2, as DVC does)."""
    from textclf import yamlio

    return yamlio.read(path)


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
    from dvc.utils.serialize import modify_yaml

    from textclf_dev.toy import toy_frame

    root = copy_repo(factory.mktemp("repo"))
    overrides = tiny_params(model={"backbone": str(backbone)}, train={"epochs": epochs})
    # The real params.yaml, layout and comments kept: the overrides are written the way
    # `dvc exp run --set-param` writes them (DVC's own YAML round trip).
    with modify_yaml(root / "params.yaml") as shipped:
        for section, values in overrides.items():
            for key, value in values.items():
                shipped[section][key] = value
    params = textclf_yaml(root / "params.yaml")
    (root / "data").mkdir()
    toy_frame(240).to_csv(root / "data" / "toy.csv", index=False)
    (root / "data.expectations.yaml").write_text(expectations_yaml())  # the toy corpus's bounds
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
    params_file.write_text(original.replace("calibration_bins: 15", "calibration_bins: 10"))
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


def readme_experiment_commands() -> list[str]:
    """The commands of the README's experiment block (the one that runs `dvc exp run`)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.DOTALL)
    block = next(b for b in blocks if "dvc exp run" in b)
    commands = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [c for c in commands if c and not c.startswith(("source ", "#"))]


def test_readme_experiment_commands_rerun_only_what_the_param_feeds(pipeline_repo: Path) -> None:
    """README "Change params, run experiments", as written, on the real params.yaml's layout.

    `dvc exp run -S` rewrites params.yaml in YAML 1.2 style; textclf must read every value as
    DVC does, and the rewrite must change the one key only.
    """
    import shlex

    from textclf.config.params import load_params

    run, show, apply = readme_experiment_commands()
    assert run.startswith("dvc exp run -S evaluate.calibration_bins=10 -n ")
    params_file = pipeline_repo / "params.yaml"
    before = params_file.read_text()
    assert "\n  - no\n" in before  # a word YAML 1.1 would read as false
    ran = _run(shlex.split(run), pipeline_repo)
    stages = set(re.findall(r"Running stage '([\w-]+)'", ran.stdout))
    assert "evaluate" in stages
    assert not stages & {"prepare", "train", "export", "explain", "drift"}, ran.stdout
    changed = [
        line
        for line in difflib.unified_diff(
            before.splitlines(), params_file.read_text().splitlines(), n=0, lineterm=""
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert [c.split("#")[0].rstrip() for c in changed] == [
        "-  calibration_bins: 15",
        "+  calibration_bins: 10",
    ], changed
    loaded = load_params(params_file)
    assert loaded.evaluate.calibration_bins == 10 and "no" in loaded.slices.negation_words

    shown = _run(shlex.split(show), pipeline_repo).stdout
    name = shlex.split(run)[-1]
    row = next(line for line in shown.splitlines() if f"[{name}]" in line)
    assert row.split()[-1] == "10" and "macro_f1" in shown
    _run(["git", "checkout", "-q", "--", "params.yaml"], pipeline_repo)
    assert load_params(params_file).evaluate.calibration_bins == 15
    _run(shlex.split(apply), pipeline_repo)
    assert load_params(params_file).evaluate.calibration_bins == 10


def docs_distill_commands() -> list[str]:
    """The commands of docs/distill.md's bash block."""
    text = (REPO / "docs" / "distill.md").read_text(encoding="utf-8")
    block = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)[0]
    return [c for c in block.splitlines() if c.strip() and not c.startswith("source ")]


def test_docs_distill_commands_train_and_ship_the_student(pipeline_repo: Path) -> None:
    """docs/distill.md, as written: the student is trained, evaluated, exported and reviewed
    (the stages after export rerun on its graph); prepare and train stay cached."""
    import json
    import shlex

    import onnx

    from textclf.inference import GRAPH_FILES

    run, show = docs_distill_commands()
    ran = _run(shlex.split(run), pipeline_repo)
    stages = set(re.findall(r"Running stage '([\w-]+)'", ran.stdout))
    assert {"distill", "evaluate", "export", "behaviour", "drift", "card"} <= stages, ran.stdout
    assert not stages & {"prepare", "train"}, ran.stdout
    metrics = json.loads((pipeline_repo / "reports/distill/metrics.json").read_text())
    assert metrics["enabled"] and metrics["student"]["layers"] == 1
    compared = json.loads((pipeline_repo / "reports/export/metrics.json").read_text())["distill"]
    assert compared["shipped"] == "student"
    graph = onnx.load(
        str(pipeline_repo / "artifacts/onnx" / GRAPH_FILES["int8"]), load_external_data=False
    )
    assert sum(n.op_type == "Softmax" for n in graph.graph.node) == 1  # one layer ships
    shown = _run(shlex.split(show), pipeline_repo).stdout
    row = next(line for line in shown.splitlines() if "[student]" in line)
    assert row.split()[-1] == "True", shown
