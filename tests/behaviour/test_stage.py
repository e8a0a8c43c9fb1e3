"""The behaviour stage on exports whose behaviour is known: what it measures and writes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.behaviour.conftest import stage_root
from textclf.config.behaviour import BehaviourParams
from textclf.errors import ConfigError
from textclf.outputs.behaviour import BehaviourReport
from textclf.stages import behaviour


def params() -> SimpleNamespace:
    """The only section the stage reads, at its defaults."""
    return SimpleNamespace(behaviour=BehaviourParams())


def test_the_stage_measures_negation(tmp_path: Path, lexicon_exports: dict[str, Path]) -> None:
    good = behaviour.run(params(), stage_root(tmp_path / "a", lexicon_exports["reads_not"]))
    bad = behaviour.run(params(), stage_root(tmp_path / "b", lexicon_exports["ignores_not"]))
    assert good["tests"]["negated_positive"]["pass_rate"] == 1.0
    assert bad["tests"]["negated_positive"]["pass_rate"] == 0.0
    assert "negated_positive" in bad["summary"]["below_threshold"]
    assert "negated_positive" not in good["summary"]["below_threshold"]
    worst = bad["tests"]["negated_positive"]["failures"][0]
    assert worst["prediction"] == worst["changed_prediction"] == "positive"
    assert "not" in worst["changed"].split() or "don't" in worst["changed"]
    assert len(bad["tests"]["negated_positive"]["failures"]) == 5  # behaviour.max_failures


def test_the_stage_writes_the_metrics_and_the_summary(
    tmp_path: Path, lexicon_exports: dict[str, Path]
) -> None:
    paths = stage_root(tmp_path, lexicon_exports["ignores_not"])
    behaviour.run(params(), paths)
    report = BehaviourReport.read(paths.behaviour_metrics)
    assert report.suite == "behaviour.yaml" and len(report.suite_sha256) == 64
    summary = paths.behaviour_markdown.read_text(encoding="utf-8")
    assert "| negated_positive | directional | 0.0% (0/120) | 60% | ❌ |" in summary
    assert "**negated_positive** fails on" in summary


def test_other_labels_say_which_tests_do_not_apply(
    tmp_path: Path, lexicon_exports: dict[str, Path]
) -> None:
    from tests.behaviour.conftest import suite_words
    from textclf_dev.toy import make_lexicon_export

    export = make_lexicon_export(tmp_path / "spam", suite_words(), labels=["ham", "spam"])
    paths = stage_root(tmp_path / "root", export, labels=["ham", "spam"])
    report = behaviour.run(params(), paths)
    assert "positive_statements" in report["summary"]["not_applicable"]
    assert report["summary"]["applicable"] > 0
    assert "does not apply" in paths.behaviour_markdown.read_text(encoding="utf-8")


def test_a_missing_suite_stops_with_the_fix(
    tmp_path: Path, lexicon_exports: dict[str, Path]
) -> None:
    paths = stage_root(tmp_path, lexicon_exports["reads_not"])
    paths.behaviour_suite.unlink()
    with pytest.raises(ConfigError, match=r"git checkout -- behaviour.yaml"):
        behaviour.run(params(), paths)
    assert not paths.behaviour_metrics.exists()
