"""The repository's own wiring: dvc.yaml, params, Makefile, CI entry point and pre-commit."""

from __future__ import annotations

import re
import subprocess

import yaml

from tests.conftest import REPO
from textclf.config.params import Params, load_params


def _stages() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_every_stage_param_key_exists_in_the_typed_params() -> None:
    params = load_params(REPO / "params.yaml").model_dump()
    for name, stage in _stages().items():
        for key in stage.get("params", []):
            node = params
            for part in str(key).split("."):
                assert isinstance(node, dict) and part in node, f"{name}: params key {key}"
                node = node[part]


#: params.yaml sections no stage reads, and the command that reads each (outside the DAG: DVC
#: has no optional dependencies, and replay runs only when a traffic snapshot exists).
OUTSIDE_DAG = {
    "replay": ("src/textclf/production/cli.py", "cfg.replay"),
    "monitor": ("src/textclf/production/cli.py", "cfg.monitor"),
}


def test_every_params_section_is_read_by_some_stage() -> None:
    used = {str(k).split(".")[0] for s in _stages().values() for k in s.get("params", [])}
    # serve is read by the service, gate by `textclf gate` and the PR report (outside the DAG).
    assert set(Params.model_fields) <= used | set(OUTSIDE_DAG)
    assert not used & set(OUTSIDE_DAG), "a section a stage reads is not outside the DAG"
    for section, (module, reads) in OUTSIDE_DAG.items():
        assert reads in (REPO / module).read_text("utf-8"), f"{module} no longer reads {section}"


def test_every_dependency_exists_or_is_produced_upstream() -> None:
    produced: set[str] = set()
    for name, stage in _stages().items():
        for dep in stage.get("deps", []):
            exists = (REPO / dep).exists() or dep == "data"
            made = any(dep == out or dep.startswith(out.rstrip("/") + "/") for out in produced)
            assert exists or made, f"stage {name}: dep {dep} neither exists nor is produced earlier"
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                produced.add(next(iter(entry)) if isinstance(entry, dict) else entry)


def test_stage_commands_are_cli_commands() -> None:
    from typer.main import get_command

    from textclf.cli import app

    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    for name, stage in _stages().items():
        cmd = stage["cmd"].split()
        assert cmd[0] == "textclf" and cmd[1] in commands, name


def test_make_help_lists_every_target() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = re.findall(r"^([a-zA-Z0-9_-]+):", makefile, flags=re.M)
    out = subprocess.run(
        ["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    for target in targets:
        assert re.search(rf"^\s+{target}\s", out, flags=re.M), f"{target} missing from help"


def test_ci_runs_the_two_readme_commands_in_order_and_fails_when_one_fails() -> None:
    script = (REPO / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script
    commands = [ln for ln in script.splitlines() if ln and not ln.startswith(("#", "set ", "cd "))]
    assert commands == ["make run", "make test", "make test-image"]
    readme = (REPO / "README.md").read_text()
    assert readme.index("make run ") < readme.index("make test ") < readme.index("make test-image")


def test_pre_commit_uses_local_hooks_only() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    assert {r["repo"] for r in config["repos"]} == {"local"}
    ids = {h["id"] for r in config["repos"] for h in r["hooks"]}
    assert {"ruff", "ruff-format", "mypy", "check-yaml", "detect-secrets"} <= ids


def test_data_dvc_tracks_the_data_directory() -> None:
    dvc = yaml.safe_load((REPO / "data.dvc").read_text())
    assert [o["path"] for o in dvc["outs"]] == ["data"]
    assert dvc["outs"][0]["md5"].endswith(".dir")


def test_git_tracks_no_dvc_output() -> None:
    """Data and DVC outputs live in the DVC cache: a committed copy would make `dvc commit` and
    `dvc add` fail in every clone ("already tracked by SCM")."""
    tracked = subprocess.run(
        ["git", "ls-files", "data", "artifacts"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert tracked == []
    for path in ("data/tweets.csv", "artifacts/model/model.safetensors"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert ignored.returncode == 0, f"{path} is not ignored by git"


def test_fresh_clone_data_step_matches_the_committed_data_dvc(tmp_path) -> None:
    """`textclf data` on a clone with no data and no cache reproduces data.dvc's hash exactly."""
    from textclf.data.bootstrap import data_state, ensure_data

    (tmp_path / "data.dvc").write_text((REPO / "data.dvc").read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc = REPO / ".venv" / "bin" / "dvc"
    subprocess.run([str(dvc), "init", "-q"], cwd=tmp_path, check=True)
    assert data_state(tmp_path) == "deleted"
    assert ensure_data(tmp_path) == "copied the default corpus"
    assert data_state(tmp_path) == "ok"  # in the workspace and in the cache, hash unchanged
    assert (tmp_path / "data.dvc").read_text() == (REPO / "data.dvc").read_text()
    assert ensure_data(tmp_path) == "already in place"
