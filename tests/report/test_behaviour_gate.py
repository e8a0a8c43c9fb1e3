"""The gate judges behaviour with the BASE's suite, run by the judge on the PR's export.

The toy exports (tests/behaviour/conftest.py) are bag-of-words models with known behaviour: one
reads "not", one ignores it, so negation breaking on purpose must fail the gate.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ReviewRepo:
    """Sets up ``repo`` for a review: the base's model reads "not"; the PR's is ``pr_model``."""

    repo: Repo
    real_outputs: dict[str, str]
    measured: dict[str, str]
    lexicon_exports: dict[str, Path]

    def __call__(
        self,
        pr_model: str,
        pr_suite: str | None = None,
        *,
        base_suite: bool = True,
        base_lock: str | None = None,
        pr_lock: str | None = None,
        pr_export: bool = True,
    ) -> Path:
        """Commit the base, write the PR's files (its export copied to artifacts/onnx unless
        ``pr_export`` is false); the repository's root."""
        gate, suite = lenient_gate(), SUITE.read_text(encoding="utf-8")
        base: dict[str, str | None] = {**self.real_outputs, "gate": gate}
        base.update(
            behaviour=self.measured["reads_not"], behaviour_suite=suite if base_suite else None
        )
        new: dict[str, str | None] = {**self.real_outputs, "gate": gate}
        new.update(
            behaviour=self.measured[pr_model],
            behaviour_suite=pr_suite if pr_suite is not None else suite,
        )
        for files, lock in ((base, base_lock), (new, pr_lock)):
            if lock is not None:
                files["dvc_lock"] = lock
        _setup(self.repo, base, new)
        if pr_export:
            shutil.copytree(self.lexicon_exports[pr_model], self.repo.root / "artifacts" / "onnx")
        return self.repo.root


@pytest.fixture
def review_repo(
    repo: Repo,
    real_outputs: dict[str, str],
    measured: dict[str, str],
    lexicon_exports: dict[str, Path],
) -> ReviewRepo:
    return ReviewRepo(repo, real_outputs, measured, lexicon_exports)


def test_a_model_that_ignores_not_fails_the_gate(
    review_repo: ReviewRepo,
) -> None:
    root = review_repo("ignores_not")
    review = build_review(root, env={})
    failed = {c.name: c.detail for c in review.verdict.failures}
    assert set(failed) == {NAME}
    assert "negated_positive 0.0% < 60% (base's model: 100.0% (120/120))" in failed[NAME]
    markdown = review.markdown.replace("\\_", "_")
    assert "| negated_positive | dir | 60% | 100.0% (120/120) | 0.0% (0/120) | ❌ |" in markdown
    assert "Failing cases of the tests below threshold" in review.markdown
    result = CliRunner().invoke(app, ["gate", "--root", str(root)])
    assert result.exit_code == 1, result.output
    assert "negated_positive" in result.output


def test_a_model_that_reads_not_passes_and_known_failures_only_warn(
    review_repo: ReviewRepo,
) -> None:
    """Negative control of the test above: same suite, same base, the export reads "not"."""
    root = review_repo("reads_not")
    review = build_review(root, env={})
    assert review.verdict.passed, review.verdict.failures
    checks = {c.name: c for c in review.verdict.checks}
    assert checks[NAME].passed and "no test of 11 newly below" in checks[NAME].detail
    # typo and negated_negative fail on the base's model too: shown, not blocking
    assert not checks[KNOWN].passed and not checks[KNOWN].blocking
    assert "typo" in checks[KNOWN].detail


def test_a_pr_cannot_pass_by_dropping_the_test_it_fails(
    review_repo: ReviewRepo,
) -> None:
    raw = yaml.safe_load(SUITE.read_text(encoding="utf-8"))
    raw["tests"] = [t for t in raw["tests"] if t["name"] != "negated_positive"]
    root = review_repo("ignores_not", yaml.safe_dump(raw))
    review = build_review(root, env={})
    assert {c.name for c in review.verdict.failures} == {NAME}
    assert "`behaviour.yaml` drops negated_positive" in review.markdown.replace("\\_", "_")


def test_without_a_base_suite_behaviour_is_shown_as_not_gated(
    review_repo: ReviewRepo,
) -> None:
    root = review_repo("ignores_not", base_suite=False)
    review = build_review(root, env={})
    check = next(c for c in review.verdict.checks if c.name == NAME)
    assert check.passed and not check.blocking and "not gated" in check.detail
    assert "adds hashtag_added" in review.markdown.replace("\\_", "_")


def test_a_missing_export_fails_the_check_with_the_fix(
    review_repo: ReviewRepo,
) -> None:
    root = review_repo("reads_not")
    shutil.rmtree(root / "artifacts" / "onnx")
    review = build_review(root, env={})
    failed = {c.name: c.detail for c in review.verdict.failures}
    assert "dvc checkout artifacts/onnx" in failed[NAME]


def _lock(md5: str) -> str:
    """A dvc.lock recording an export directory with ``md5``."""
    outs = [{"path": "artifacts/onnx", "md5": f"{md5}.dir", "size": 1, "nfiles": 4}]
    return yaml.safe_dump({"schema": "2.0", "stages": {"export": {"cmd": "x", "outs": outs}}})


@pytest.mark.parametrize(("pr_md5", "passes"), [("a" * 32, True), ("b" * 32, False)])
def test_an_unchanged_export_is_judged_by_the_base_s_committed_results(
    review_repo: ReviewRepo,
    pr_md5: str,
    passes: bool,
) -> None:
    """A PR whose dvc.lock records the base's export ships the base's graph: the base's own
    results (read from the base, not the workspace) stand, no checkout needed. A changed export
    (negative control) must be run, and without its files the check fails with the fix."""
    # The workspace's own metrics claim the other model: never read for the verdict.
    root = review_repo(
        "ignores_not", base_lock=_lock("a" * 32), pr_lock=_lock(pr_md5), pr_export=False
    )
    assert not (root / "artifacts" / "onnx").exists()
    review = build_review(root, env={})
    check = next(c for c in review.verdict.checks if c.name == NAME)
    assert check.passed is passes, check.detail
    if not passes:
        assert "dvc checkout artifacts/onnx" in check.detail
