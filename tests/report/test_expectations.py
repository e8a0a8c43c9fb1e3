"""Data expectations in the review: the PR's measured figures judged with the BASE's file.

The fast tests build both sides from one real ``prepare`` run of the toy corpus (no training);
the last one runs the whole review on the tiny model's files in a throwaway git repository.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import expectations_yaml, make_toy_root, tiny_params
from tests.report.conftest import Repo, edit_json, gate_yaml
from textclf.config.params import parse_params
from textclf.paths import Paths
from textclf.report.build import build_review
from textclf.report.expectations import NAME, check_expectations, expectations_section
from textclf.report.gate import Verdict
from textclf.report.policy import gate_changes
from textclf.report.sections import Context
from textclf.report.sources import Snapshot
from textclf.stages import prepare

FIX = "Fix: fix the data; a change to data.expectations.yaml takes effect only after it is merged"


@pytest.fixture(scope="module")
def summary_json(tmp_path_factory: pytest.TempPathFactory, tiny_backbone: Path) -> str:
    """reports/prepare/summary.json of the toy corpus, checked with the toy expectations."""
    root = make_toy_root(tmp_path_factory.mktemp("prepared"), tiny_backbone)
    prepare.run(parse_params(tiny_params()), Paths(root))
    return Paths(root).data_summary.read_text(encoding="utf-8")


def measured(**figures: Any) -> Any:
    def change(summary: dict[str, Any]) -> None:
        summary["expectations"]["measured"].update(figures)

    return change


def sides(
    new_summary: str | None,
    base_file: str | None,
    new_file: str | None,
    base_summary: str | None = None,
) -> tuple[Snapshot, Snapshot]:
    new = Snapshot("workspace", None, {"prepare": new_summary, "expectations": new_file})
    base = Snapshot("main", "c0ffee00", {"prepare": base_summary, "expectations": base_file})
    return new, base


def test_the_pr_data_meeting_the_base_file_passes(summary_json: str) -> None:
    check = check_expectations(*sides(summary_json, expectations_yaml(), expectations_yaml()))
    assert check is not None and check.passed and check.blocking, check
    assert check.name == NAME
    assert (
        check.detail.startswith("all ") and "of main: data.expectations.yaml hold" in check.detail
    )


def test_the_pr_data_breaking_the_base_file_fails_naming_the_key_and_the_fix(
    summary_json: str,
) -> None:
    broken = edit_json(summary_json, measured(duplicate_rate=0.5))
    check = check_expectations(*sides(broken, expectations_yaml(), expectations_yaml()))
    assert check is not None and not check.passed and check.blocking
    assert (
        "1 of " in check.detail
        and "expectations of main: data.expectations.yaml fail" in check.detail
    )
    assert "max_duplicate_rate 0.5 (at most 0.1)" in check.detail
    assert FIX in check.detail


def test_a_pr_loosening_its_own_file_is_judged_with_the_base_file(summary_json: str) -> None:
    """Looser in the PR, and the data meets the base's bounds: passes; the change is listed."""
    loose = expectations_yaml(max_duplicate_rate=0.9, min_rows_per_class=None)
    new, base = sides(summary_json, expectations_yaml(), loose)
    check = check_expectations(new, base)
    assert check is not None and check.passed, check
    listed = {c.key: (c.base, c.new) for c in gate_changes(base, new)}
    assert listed == {
        "data.expectations.yaml: max_duplicate_rate": (0.1, 0.9),
        "data.expectations.yaml: min_rows_per_class": (20, None),
    }


def test_a_pr_loosening_its_own_file_and_breaking_the_base_file_fails(summary_json: str) -> None:
    broken = edit_json(summary_json, measured(duplicate_rate=0.5))
    loose = expectations_yaml(max_duplicate_rate=0.9)
    check = check_expectations(*sides(broken, expectations_yaml(), loose))
    assert check is not None and not check.passed
    assert "max_duplicate_rate 0.5 (at most 0.1)" in check.detail
    # The PR's own file would have let it through: the base's is the one in force.
    own = check_expectations(*sides(broken, loose, loose))
    assert own is not None and own.passed


def test_a_summary_without_the_figures_says_so(summary_json: str) -> None:
    older = edit_json(summary_json, lambda s: s.pop("expectations"))
    check = check_expectations(*sides(older, expectations_yaml(), expectations_yaml()))
    assert check is not None and not check.passed
    assert check.detail == (
        "reports/prepare/summary.json has no data expectation figures (written by code from "
        "before data.expectations.yaml): rerun `dvc repro prepare`"
    )
    missing = check_expectations(*sides(None, expectations_yaml(), expectations_yaml()))
    assert missing is not None and not missing.passed
    assert missing.detail == (
        "missing reports/prepare/summary.json: run `dvc repro` (the prepare stage writes it)"
    )


def test_without_a_base_file_the_pr_file_applies_and_the_review_says_so(summary_json: str) -> None:
    check = check_expectations(*sides(summary_json, None, expectations_yaml()))
    assert check is not None and check.passed
    assert check.detail.startswith("first data expectations: main has no data.expectations.yaml")
    assert "of workspace: data.expectations.yaml hold" in check.detail
    assert check_expectations(*sides(summary_json, None, None)) is None  # nothing to judge with


def test_an_invalid_base_file_fails_the_check_with_its_error(summary_json: str) -> None:
    check = check_expectations(*sides(summary_json, "max_duplicate_rate: 7\n", expectations_yaml()))
    assert check is not None and not check.passed
    assert "main: data.expectations.yaml has 1 invalid value(s)" in check.detail
    assert "max_duplicate_rate = 7 is invalid" in check.detail


def test_the_section_shows_base_and_pr_figures_and_the_base_bounds(summary_json: str) -> None:
    base_summary = edit_json(summary_json, measured(duplicate_rate=0.02))
    broken = edit_json(summary_json, measured(duplicate_rate=0.5))
    new, base = sides(broken, expectations_yaml(), expectations_yaml(), base_summary)
    verdict = Verdict([], "main", "c0ffee00")
    lines = expectations_section(Context(new, base, verdict, None, {}))
    text = "\n".join(lines)
    assert lines[0] == "### Data expectations"
    assert "Bounds: `main: data.expectations.yaml`" in text and "1 of " in text
    assert "| `max_duplicate_rate` | at most 0.1 | 0.0200 | **0.5000** | ❌ |" in lines
    shares = json.loads(summary_json)["expectations"]["measured"]["class_share"]
    row = next(ln for ln in lines if ln.startswith("| `class_share.min (positive)`"))
    assert row.endswith("✅ |") and "at least 0.1" in row
    assert f"{shares['positive']:.4f}" in row


def test_the_review_gates_on_the_base_file_end_to_end(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    gate = gate_yaml(min_macro_f1_over_baseline=-1.0, fail_on_disparity="never")
    files = {**real_outputs, "gate": gate, "expectations": expectations_yaml()}
    repo.write(files)
    repo.commit("base")
    repo.branch("proposal")
    broken = edit_json(real_outputs["prepare"], measured(duplicate_rate=0.5))
    loose = yaml.safe_load(expectations_yaml())
    loose["max_duplicate_rate"] = 0.9
    repo.write({"prepare": broken, "expectations": yaml.safe_dump(loose)})
    review = build_review(repo.root, env={})

    check = next(c for c in review.verdict.checks if c.name == NAME)
    assert not check.passed and not review.verdict.passed
    assert "max_duplicate_rate 0.5 (at most 0.1)" in check.detail
    md = review.markdown
    assert "### Data expectations" in md and "| `max_duplicate_rate` | at most 0.1 |" in md
    assert "This PR changes the gate: takes effect after merge" in md
    assert "| `data.expectations.yaml: max_duplicate_rate` | `0.1` | `0.9` |" in md
