"""The gate judges behaviour with the BASE's suite, run by the judge on the PR's export.

The toy exports (tests/behaviour/conftest.py) are bag-of-words models with known behaviour: one
reads "not", one ignores it, so negation breaking on purpose must fail the gate.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.behaviour.conftest import SUITE, lexicon_exports, stage_root
from tests.report.conftest import Repo
from tests.report.test_report import _setup, lenient_gate
from textclf.cli import app
from textclf.config.behaviour import BehaviourParams
from textclf.report.behaviour import KNOWN, NAME
from textclf.report.build import build_review
from textclf.stages import behaviour

__all__ = ["lexicon_exports"]


@pytest.fixture(scope="module")
def measured(
    tmp_path_factory: pytest.TempPathFactory, lexicon_exports: dict[str, Path]
) -> dict[str, str]:
    """reports/behaviour/metrics.json of the repository's suite on each toy export."""
    from types import SimpleNamespace

    out = {}
    for name, export in lexicon_exports.items():
        paths = stage_root(tmp_path_factory.mktemp(name), export)
        behaviour.run(SimpleNamespace(behaviour=BehaviourParams()), paths)
        out[name] = paths.behaviour_metrics.read_text(encoding="utf-8")
    return out


def _review_repo(
    repo: Repo,
    real_outputs: dict[str, str],
    measured: dict[str, str],
    lexicon_exports: dict[str, Path],
    pr_model: str,
    pr_suite: str | None = None,
    base_suite: bool = True,
) -> None:
    gate = lenient_gate()
    suite = SUITE.read_text(encoding="utf-8")
    base = {**real_outputs, "gate": gate, "behaviour": measured["reads_not"]}
    base["behaviour_suite"] = suite if base_suite else None
    new = {**real_outputs, "gate": gate, "behaviour": measured[pr_model]}
    new["behaviour_suite"] = pr_suite if pr_suite is not None else suite
    _setup(repo, base, new)
    shutil.copytree(lexicon_exports[pr_model], repo.root / "artifacts" / "onnx")


def test_a_model_that_ignores_not_fails_the_gate(
    repo: Repo,
    real_outputs: dict[str, str],
    measured: dict[str, str],
    lexicon_exports: dict[str, Path],
) -> None:
    _review_repo(repo, real_outputs, measured, lexicon_exports, "ignores_not")
    review = build_review(repo.root, env={})
    failed = {c.name: c.detail for c in review.verdict.failures}
    assert set(failed) == {NAME}
    assert "negated_positive 0.0% < 60% (base's model: 100.0% (120/120))" in failed[NAME]
    markdown = review.markdown.replace("\\_", "_")
    assert "| negated_positive | dir | 60% | 100.0% (120/120) | 0.0% (0/120) | ❌ |" in markdown
    assert "Failing cases of the tests below threshold" in review.markdown
    result = CliRunner().invoke(app, ["gate", "--root", str(repo.root)])
    assert result.exit_code == 1, result.output
    assert "negated_positive" in result.output


def test_a_model_that_reads_not_passes_and_known_failures_only_warn(
    repo: Repo,
    real_outputs: dict[str, str],
    measured: dict[str, str],
    lexicon_exports: dict[str, Path],
) -> None:
    """Negative control of the test above: same suite, same base, the export reads "not"."""
    _review_repo(repo, real_outputs, measured, lexicon_exports, "reads_not")
    review = build_review(repo.root, env={})
    assert review.verdict.passed, review.verdict.failures
    checks = {c.name: c for c in review.verdict.checks}
    assert checks[NAME].passed and "no test of 11 newly below" in checks[NAME].detail
    # typo and negated_negative fail on the base's model too: shown, not blocking
    assert not checks[KNOWN].passed and not checks[KNOWN].blocking
    assert "typo" in checks[KNOWN].detail


def test_a_pr_cannot_pass_by_dropping_the_test_it_fails(
    repo: Repo,
    real_outputs: dict[str, str],
    measured: dict[str, str],
    lexicon_exports: dict[str, Path],
) -> None:
    raw = yaml.safe_load(SUITE.read_text(encoding="utf-8"))
    raw["tests"] = [t for t in raw["tests"] if t["name"] != "negated_positive"]
    _review_repo(repo, real_outputs, measured, lexicon_exports, "ignores_not", yaml.safe_dump(raw))
    review = build_review(repo.root, env={})
    assert {c.name for c in review.verdict.failures} == {NAME}
    assert "`behaviour.yaml` drops negated_positive" in review.markdown.replace("\\_", "_")


def test_without_a_base_suite_behaviour_is_shown_as_not_gated(
    repo: Repo,
    real_outputs: dict[str, str],
    measured: dict[str, str],
    lexicon_exports: dict[str, Path],
) -> None:
    _review_repo(repo, real_outputs, measured, lexicon_exports, "ignores_not", base_suite=False)
    review = build_review(repo.root, env={})
    check = next(c for c in review.verdict.checks if c.name == NAME)
    assert check.passed and not check.blocking and "not gated" in check.detail
    assert "adds hashtag_added" in review.markdown.replace("\\_", "_")


def test_a_missing_export_fails_the_check_with_the_fix(
    repo: Repo,
    real_outputs: dict[str, str],
    measured: dict[str, str],
    lexicon_exports: dict[str, Path],
) -> None:
    _review_repo(repo, real_outputs, measured, lexicon_exports, "reads_not")
    shutil.rmtree(repo.root / "artifacts" / "onnx")
    review = build_review(repo.root, env={})
    failed = {c.name: c.detail for c in review.verdict.failures}
    assert "dvc checkout artifacts/onnx" in failed[NAME]


def _lock(md5: str) -> str:
    """A dvc.lock recording an export directory with ``md5``."""
    outs = [{"path": "artifacts/onnx", "md5": f"{md5}.dir", "size": 1, "nfiles": 4}]
    return yaml.safe_dump({"schema": "2.0", "stages": {"export": {"cmd": "x", "outs": outs}}})


@pytest.mark.parametrize(("pr_md5", "passes"), [("a" * 32, True), ("b" * 32, False)])
def test_an_unchanged_export_is_judged_by_the_base_s_committed_results(
    repo: Repo,
    real_outputs: dict[str, str],
    measured: dict[str, str],
    lexicon_exports: dict[str, Path],
    pr_md5: str,
    passes: bool,
) -> None:
    """A PR whose dvc.lock records the base's export ships the base's graph: the base's own
    results (read from the base, not the workspace) stand, no checkout needed. A changed export
    (negative control) must be run, and without its files the check fails with the fix."""
    gate, suite = lenient_gate(), SUITE.read_text(encoding="utf-8")
    base = {**real_outputs, "gate": gate, "behaviour": measured["reads_not"]}
    base.update(behaviour_suite=suite, dvc_lock=_lock("a" * 32))
    # The workspace's own metrics claim the other model: never read for the verdict.
    new = {**real_outputs, "gate": gate, "behaviour": measured["ignores_not"]}
    new.update(behaviour_suite=suite, dvc_lock=_lock(pr_md5))
    _setup(repo, base, new)
    assert not (repo.root / "artifacts" / "onnx").exists()
    review = build_review(repo.root, env={})
    check = next(c for c in review.verdict.checks if c.name == NAME)
    assert check.passed is passes, check.detail
    if not passes:
        assert "dvc checkout artifacts/onnx" in check.detail
