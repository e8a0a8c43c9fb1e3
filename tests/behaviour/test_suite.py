"""The suite file: validation names the key and the fix; expansion and perturbations are
deterministic; tests naming labels the model lacks are reported, never passed."""

from __future__ import annotations

import random

import numpy as np
import pytest
import yaml

from tests.behaviour.conftest import SUITE
from textclf.behaviour.runner import run_suite
from textclf.behaviour.suite import PERTURBATIONS, cases, parse_suite, perturb
from textclf.errors import ConfigError


def suite_text(**changes: object) -> str:
    raw = yaml.safe_load(SUITE.read_text(encoding="utf-8"))
    raw.update(changes)
    return yaml.safe_dump(raw, sort_keys=False)


def test_the_repository_suite_is_valid_and_expands_the_same_twice() -> None:
    first = parse_suite(SUITE.read_text(encoding="utf-8"), "behaviour.yaml")
    again = parse_suite(SUITE.read_text(encoding="utf-8"), "behaviour.yaml")
    assert {t.type for t in first.tests} == {"mft", "inv", "dir"}
    assert {t.perturb for t in first.tests if t.perturb} == set(PERTURBATIONS)
    for a, b in zip(first.tests, again.tests, strict=True):
        got = cases(first, a)
        assert got == cases(again, b)
        assert 0 < len(got) <= first.max_cases, a.name


@pytest.mark.parametrize(
    ("test", "message"),
    [
        ({"name": "x", "type": "mft", "min_pass_rate": 0.9, "templates": ["hi"]}, "needs expect"),
        ({"name": "x", "type": "inv", "min_pass_rate": 0.9, "templates": ["a"]}, "needs perturb"),
        (
            {"name": "x", "type": "dir", "min_pass_rate": 0.5, "pairs": [["a", "not a"]]},
            "exactly one of away_from and towards",
        ),
        (
            {
                "name": "x",
                "type": "mft",
                "expect": "positive",
                "min_pass_rate": 1.5,
                "templates": ["a"],
            },
            "min_pass_rate",
        ),
        (
            {
                "name": "x",
                "type": "mft",
                "expect": "positive",
                "min_pass_rate": 0.9,
                "templates": ["I like {nothing_here}"],
            },
            "placeholder(s) ['nothing_here']",
        ),
        (
            {
                "name": "x",
                "type": "dir",
                "away_from": "positive",
                "min_pass_rate": 0.5,
                "pairs": [["The {thing} was {pos}.", "Not {pos}, the {thing}."]],
            },
            "same placeholders in the same order",
        ),
        (
            {
                "name": "x",
                "type": "mft",
                "expect": "positive",
                "min_pass_rate": 0.9,
                "templates": ["a"],
                "min_pass_rat": 1,
            },
            "did you mean 'min_pass_rate'",
        ),
    ],
)
def test_a_bad_test_is_refused_with_its_key(test: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_suite(suite_text(tests=[test]), "behaviour.yaml")
    assert message in str(err.value)
    assert "behaviour.yaml" in str(err.value)


def test_repeated_test_names_are_refused() -> None:
    test = {
        "name": "x",
        "type": "mft",
        "expect": "positive",
        "min_pass_rate": 0.9,
        "templates": ["a"],
    }
    with pytest.raises(ConfigError, match=r"repeated: \['x'\]"):
        parse_suite(suite_text(tests=[test, test]), "behaviour.yaml")


def test_perturbations_change_the_text_the_way_they_say() -> None:
    rng = random.Random(0)
    names = ["Anna", "Wei"]
    assert perturb("ok", "add_url", rng, names).startswith("ok https://t.co/")  # type: ignore[union-attr]
    assert perturb("ok", "add_mention", rng, names).endswith(" ok")  # type: ignore[union-attr]
    assert perturb("ok", "add_hashtag", rng, names).startswith("ok #")  # type: ignore[union-attr]
    assert perturb("Fine.", "punctuation", rng, names) == "Fine"
    assert perturb("Fine", "punctuation", rng, names) == "Fine!"
    assert perturb("Anna came", "swap_name", rng, names) == "Wei came"
    assert perturb("nobody came", "swap_name", rng, names) is None
    typo = perturb("wonderful", "typo", rng, names)
    assert typo != "wonderful" and sorted(typo or "") == sorted("wonderful")
    assert (typo or "")[0] == "w"
    assert perturb("a b c", "typo", rng, names) is None  # no word of four letters


def test_other_labels_run_the_invariance_tests_and_name_what_does_not_apply() -> None:
    suite = parse_suite(SUITE.read_text(encoding="utf-8"), "behaviour.yaml")
    labels = ["spam", "ham"]
    result = run_suite(suite, lambda texts: np.tile([0.9, 0.1], (len(texts), 1)), labels)
    label_specific = [t.name for t in suite.tests if t.labels_named()]
    assert result["summary"]["not_applicable"] == label_specific
    for name in label_specific:
        test = result["tests"][name]
        assert test["ok"] is None and test["pass_rate"] is None  # not passed
        assert "the model does not have" in test["reason"]
    ran = [n for n, t in result["tests"].items() if t["applicable"]]
    assert ran and all(result["tests"][n]["type"] == "inv" for n in ran)
    assert all(result["tests"][n]["pass_rate"] == 1.0 for n in ran)  # a constant model is invariant


def test_a_model_that_answers_at_random_fails_the_invariance_tests() -> None:
    """Negative control of the test above: invariance is measured, not assumed."""
    suite = parse_suite(SUITE.read_text(encoding="utf-8"), "behaviour.yaml")
    rng = np.random.default_rng(0)
    result = run_suite(suite, lambda texts: rng.dirichlet([1, 1], len(texts)), ["spam", "ham"])
    assert {n for n, t in result["tests"].items() if t["ok"] is False} == {
        n for n, t in result["tests"].items() if t["applicable"]
    }
