"""A pull request is judged with the base's thresholds: it cannot loosen its own gate.

The thresholds are the base's gate.yaml plus the export, slices and drift limits of its
params.yaml. A PR that changes them is shown the change at the top of its review (it applies after
the merge); a PR that changes what is in the test split is flagged as not like for like.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.report.conftest import Repo, edit_json, gate_yaml
from tests.report.test_report import LENIENT, _lower, _setup, biased
from textclf.cli import app
from textclf.report.build import build_review

TEXTCLF = [sys.executable, "-m", "textclf"]


def _params(real: dict[str, str], **sections: dict[str, Any]) -> str:
    data = yaml.safe_load(real["params"])
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return yaml.safe_dump(data, sort_keys=False)


def _check(review: Any, name: str) -> Any:
    return next(c for c in review.verdict.checks if c.name == name)


def test_a_pr_that_loosens_its_gate_next_to_a_worse_model_fails(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    strict = gate_yaml(**LENIENT, max_macro_f1_drop=0.01)
    base_params = _params(real_outputs, export={"int8_min_agreement": 0.99})
    _setup(
        repo,
        {**real_outputs, "gate": strict, "params": base_params},
        {
            **real_outputs,
            # Everything the gate reads, loosened in the workspace ...
            "gate": gate_yaml(**LENIENT, max_macro_f1_drop=1.0),
            "params": _params(real_outputs, export={"int8_min_agreement": 0.0}),
            # ... next to a model 0.1 worse, whose int8 graph agrees with torch on 50% only.
            "evaluate": edit_json(real_outputs["evaluate"], _lower("macro_f1", 0.1)),
            "export": edit_json(
                real_outputs["export"],
                lambda e: (e["int8"].update(agreement=0.5), e["gates"].update(passed=True)),
            ),
        },
    )
    result = CliRunner().invoke(app, ["gate", "--root", str(repo.root)])
    assert result.exit_code == 1, result.output
    assert "FAIL  macro-F1 vs base" in result.output and "allowed drop 0.01" in result.output
    assert "FAIL  export parity" in result.output and "int8 agreement 0.5 (min 0.99)" in (
        result.output
    )

    md = build_review(repo.root, env={}).markdown
    notice = md.index("This PR changes the gate: takes effect after merge")
    assert notice < md.index("### Metrics")
    assert "| `gate.yaml: max_macro_f1_drop` | `0.01` | `1.0` |" in md
    assert "| `params.yaml: export.int8_min_agreement` | `0.99` | `0.0` |" in md


def test_a_pr_that_only_tightens_the_gate_passes_with_the_base_thresholds(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    _setup(
        repo,
        {**real_outputs, "gate": gate_yaml(**LENIENT, max_macro_f1_drop=0.01)},
        {
            **real_outputs,
            "gate": gate_yaml(**LENIENT, max_macro_f1_drop=0.0),
            "evaluate": edit_json(real_outputs["evaluate"], _lower("macro_f1", 0.005)),
        },
    )
    review = build_review(repo.root, env={})
    assert review.verdict.passed, review.verdict.to_json()
    assert "allowed drop 0.01" in _check(review, "macro-F1 vs base").detail
    assert "| `gate.yaml: max_macro_f1_drop` | `0.01` | `0.0` |" in review.markdown


def test_the_first_gate_is_the_workspaces_and_says_so(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    _setup(
        repo,
        {"params": real_outputs["params"]},
        {**real_outputs, "gate": gate_yaml(**LENIENT, max_int8_size_mb=1e-6)},
    )
    review = build_review(repo.root, env={})
    assert review.verdict.notes and "first gate: main has no gate.yaml" in review.verdict.notes[0]
    assert "budget 1e-06 MB" in _check(review, "int8 model size").detail
    assert "> **Note:** first gate" in review.markdown
    assert "This PR changes the gate" not in review.markdown


def test_a_base_from_before_gate_yaml_is_judged_by_its_params_gate_section(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    legacy = yaml.safe_load(real_outputs["params"])
    legacy["gate"] = {**LENIENT, "max_macro_f1_drop": 0.0}
    _setup(
        repo,
        {**real_outputs, "gate": None, "params": yaml.safe_dump(legacy)},
        {
            **real_outputs,
            "gate": gate_yaml(**LENIENT, max_macro_f1_drop=0.5),
            "evaluate": edit_json(real_outputs["evaluate"], _lower("macro_f1", 0.01)),
        },
    )
    review = build_review(repo.root, env={})
    assert not review.verdict.notes
    assert "allowed drop 0" in _check(review, "macro-F1 vs base").detail
    assert not _check(review, "macro-F1 vs base").passed


def test_slice_and_drift_limits_are_the_bases(repo: Repo, real_outputs: dict[str, str]) -> None:
    base_params = _params(
        real_outputs, slices={"disparity_threshold": 0.8}, drift={"num_threshold": 0.05}
    )
    slices, (family, label, name) = biased(real_outputs["slices"], 0.5)
    drift = {  # what the PR's drift stage wrote, with its own (looser) thresholds
        "drift_detected": False,
        "n_drifted": 0,
        "n_columns": 2,
        "drifted_columns": [],
        "reasons": [],
        "columns": {
            "chars": {
                "drifted": False,
                "method": "Wasserstein distance (normed)",
                "score": 0.07,
                "score_kind": "score",
                "threshold": 0.2,
                "type": "numeric",
            },
            "prediction": {
                "drifted": False,
                "method": "Jensen-Shannon distance",
                "score": 0.01,
                "score_kind": "score",
                "threshold": 0.1,
                "type": "categorical",
            },
        },
    }
    strict = gate_yaml(min_macro_f1_over_baseline=-1.0, fail_on_disparity="any")
    _setup(
        repo,
        {**real_outputs, "gate": strict, "params": base_params},
        {
            **real_outputs,
            "gate": strict,
            # The PR's own limits would see no flag and no drift ...
            "params": _params(
                real_outputs, slices={"disparity_threshold": 0.4}, drift={"num_threshold": 0.2}
            ),
            "slices": edit_json(slices, lambda s: s.update(flagged=[], disparity_threshold=0.4)),
            "drift": json.dumps(drift),
        },
    )
    review = build_review(repo.root, env={})
    disparity = _check(review, "slice disparity")
    assert not disparity.passed and disparity.blocking
    assert f"{label} in {family}/{name} (ratio 0.50)" in disparity.detail
    drifted = _check(review, "data drift")  # 0.07 >= the base's 0.05: drift
    assert not drifted.passed and "1 of 2 columns drifted" in drifted.detail
    assert "| `params.yaml: slices.disparity_threshold` | `0.8` | `0.4` |" in review.markdown


def test_raising_min_support_to_hide_slices_fails_the_slice_check(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    report = json.loads(real_outputs["slices"])
    smallest = min(
        e["support"]
        for members in report["slices"].values()
        for e in members.values()
        if e.get("scored")
    )

    def hide(s: dict[str, Any]) -> None:
        for members in s["slices"].values():
            for entry in members.values():
                if entry["support"] == smallest:
                    entry.pop("prediction_rates", None)
                    entry["scored"] = False

    gate = gate_yaml(**{**LENIENT, "fail_on_disparity": "new"})
    _setup(
        repo,
        {**real_outputs, "gate": gate},
        {
            **real_outputs,
            "gate": gate,
            "params": _params(real_outputs, slices={"min_support": smallest + 1}),
            "slices": edit_json(real_outputs["slices"], hide),
        },
    )
    check = _check(build_review(repo.root, env={}), "slice disparity")
    assert not check.passed and check.blocking
    assert "cannot be judged with min_support" in check.detail and "no prediction rates" in (
        check.detail
    )


def test_a_changed_test_split_is_flagged_as_not_like_for_like(
    repo: Repo, real_outputs: dict[str, str]
) -> None:
    lock = "stages:\n  evaluate:\n    deps:\n    - path: artifacts/prepared/test.parquet\n"
    _setup(
        repo,
        {**real_outputs, "dvc_lock": lock + "      md5: " + "a" * 32 + "\n"},
        {
            **real_outputs,
            "params": _params(real_outputs, prepare={"seed": 7}),
            "dvc_lock": lock + "      md5: " + "b" * 32 + "\n",
        },
    )
    md = build_review(repo.root, env={}).markdown
    assert "This PR changes the test split: not like for like" in md
    assert "| `params.yaml: prepare.seed` | `42` | `7` |" in md
    assert f"| `artifacts/prepared/test.parquet (dvc.lock md5)` | `{'a' * 32}` |" in md
    assert "This PR changes the gate" not in md


def test_make_gate_on_a_clone_of_this_repository_fails_when_the_workspace_loosens_it(
    tmp_path: Path,
) -> None:
    """The bar, on the real committed files: loosen gate.yaml, lower macro-F1 by 0.1."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)

    def gate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*TEXTCLF, "gate", "--base", "HEAD", *args], cwd=clone, capture_output=True, text=True
        )

    assert gate().returncode == 0, gate().stdout  # the commit passes its own gate
    gate_file = clone / "gate.yaml"
    loose = yaml.safe_load(gate_file.read_text())
    loose.update(max_macro_f1_drop=1.0, fail_on_disparity="never", require_export_parity=False)
    gate_file.write_text(yaml.safe_dump(loose))
    metrics = clone / "reports" / "evaluate" / "metrics.json"
    metrics.write_text(edit_json(metrics.read_text(), _lower("macro_f1", 0.1)))
    result = gate()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  macro-F1 vs base" in result.stdout and "allowed drop 0.01" in result.stdout


@pytest.mark.parametrize("broken", ["max_macro_f1_drop: -1\n", "max_macro_f1_dorp: 0.1\n"])
def test_a_bad_gate_file_names_the_key_and_the_fix(tmp_path: Path, broken: str) -> None:
    (tmp_path / "gate.yaml").write_text(broken)
    result = CliRunner().invoke(
        app,
        [
            "check-params",
            "--params",
            str(REPO / "params.yaml"),
            "--gate",
            str(tmp_path / "gate.yaml"),
        ],
    )
    assert result.exit_code == 2
    assert "gate.yaml has 1 invalid value(s)" in result.output and "Fix:" in result.output
