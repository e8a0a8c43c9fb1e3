"""``dvc.yaml`` deps cover what each stage imports, and its params what the stage reads.

A stage's output depends on every module it imports, so DVC must rerun it when one changes: its
code deps are the import closure of ``textclf.stages.<stage>`` inside the package (lazy imports
in functions included), file by file. Missing a file gives a stale cached result; listing an
extra one reruns (or retrains) for nothing. ``cmd: textclf <stage>`` goes through ``cli.py``,
which only validates the whole params.yaml, calls the stage's ``run`` and prints its summary.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from textclf_dev.stage_deps import dep_problems, main, rewrite, stage_closure, stage_modules

SRC = REPO / "src"
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
STAGE_MODULES = stage_modules(SRC)


def params_sections(stage: dict[str, Any]) -> set[str]:
    """Top-level params.yaml sections a stage declares (``- train`` or ``- train.epochs``)."""
    names: set[str] = set()
    for entry in stage.get("params", []):
        keys = entry if isinstance(entry, dict) else {entry: None}
        names |= {str(k).split(".")[0] for k in keys}
    return names


def test_every_stage_module_is_a_stage_run_by_its_command() -> None:
    assert STAGE_MODULES, "no stage modules found"
    for name in STAGE_MODULES:
        assert name in STAGES, f"src/textclf/stages/{name}.py has no stage in dvc.yaml"
        assert STAGES[name]["cmd"] == f"textclf {name}"


@pytest.mark.parametrize("name", STAGE_MODULES)
def test_code_deps_equal_the_import_closure(name: str) -> None:
    assert dep_problems(name, STAGES[name], SRC) == []


@pytest.mark.parametrize("name", STAGE_MODULES)
def test_params_equal_the_sections_the_stage_reads(name: str) -> None:
    """``Inputs`` (the sections ``run`` reads) names the same sections as the stage's params."""
    inputs = importlib.import_module(f"textclf.stages.{name}").Inputs
    read = {n for n, _ in inspect.getmembers(inputs, lambda m: isinstance(m, property))}
    assert read == params_sections(STAGES[name])


def test_no_stage_imports_the_whole_params_file_or_the_repo_paths() -> None:
    """Whole-file modules stay out of every closure: a section or a review path added for a later
    feature must not rerun (or retrain) the stages."""
    outside = {"src/textclf/config/params.py", "src/textclf/repo_paths.py", "src/textclf/cli.py"}
    for name in STAGE_MODULES:
        files = stage_closure(SRC, name)
        assert not files & outside, f"{name} imports {sorted(files & outside)}"


# ------------------------------------------------------------------ the check can fail


def test_a_lazy_import_counts() -> None:
    """train imports its Lightning module inside ``run``: it is in the closure all the same."""
    files = stage_closure(SRC, "train")
    assert "src/textclf/models/module.py" in files
    assert "src/textclf/models/predict.py" not in files  # evaluate's, not train's


def test_a_missing_and_an_extra_dep_are_named() -> None:
    stage = dict(STAGES["evaluate"])
    deps = [d for d in stage["deps"] if d != "src/textclf/metrics.py"]
    stage["deps"] = [*deps, "src/textclf/shap_text.py"]
    assert dep_problems("evaluate", stage, SRC) == [
        "evaluate: src/textclf/metrics.py is imported but not in its deps: add it",
        "evaluate: src/textclf/shap_text.py is in its deps but not imported: remove it",
    ]


def test_a_new_import_in_a_stage_is_caught(tmp_path: Path) -> None:
    """A copy of the package where a stage gains an import its dvc.yaml entry lacks."""
    src = tmp_path / "src"
    for path in (SRC / "textclf").rglob("*.py"):
        target = src / path.relative_to(SRC)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    card = src / "textclf" / "stages" / "card.py"
    card.write_text(card.read_text("utf-8") + "\nfrom textclf import metrics  # noqa\n", "utf-8")
    assert dep_problems("card", STAGES["card"], src) == [
        "card: src/textclf/metrics.py is imported but not in its deps: add it"
    ]


def test_write_restores_the_closure_and_keeps_the_rest() -> None:
    """``python -m textclf_dev.stage_deps --write`` on a dvc.yaml missing a dep adds it back, and
    leaves a correct file byte for byte as it is (comments and other deps included)."""
    text = (REPO / "dvc.yaml").read_text(encoding="utf-8")
    assert rewrite(text, SRC) == text
    broken = text.replace("      - src/textclf/metrics.py\n", "", 1)
    assert broken != text
    assert rewrite(broken, SRC) == text


def test_the_command_exits_1_on_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src").symlink_to(SRC)
    text = (REPO / "dvc.yaml").read_text(encoding="utf-8")
    (tmp_path / "dvc.yaml").write_text(text.replace("      - src/textclf/io.py\n", "", 1))
    monkeypatch.chdir(tmp_path)
    assert main([]) == 1
    assert main(["--write"]) == 0
    assert (tmp_path / "dvc.yaml").read_text() == text
