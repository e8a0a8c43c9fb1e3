"""params.yaml survives `dvc exp run --set-param`: DVC's rewrite changes the one key, and textclf
reads every value the way DVC does (YAML 1.2)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from textclf import yamlio
from textclf.config.params import load_params


def leaves(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out += leaves(value, f"{name}.") if isinstance(value, dict) else [(name, value)]
    return out


def other_value(value: Any) -> str:
    """A `-S` override (Hydra syntax) that changes ``value`` and keeps its type."""
    if isinstance(value, bool):
        return str(not value).lower()
    if isinstance(value, int):
        return str(value + 1)
    if isinstance(value, float):
        return repr(value * 2)
    if isinstance(value, list):
        return "[" + (repr(value[0]) if value else "1") + "]"
    if value is None:
        return "1"
    return "changed"


def block(lines: list[str], key: str) -> tuple[int, int]:
    """The [start, end) lines of ``key`` (dotted) in a block-style YAML file: its line, its list
    items and the deeper-indented lines that follow it."""
    *parents, name = key.split(".")
    start, indent = 0, 0
    for part in [*parents, name]:
        pattern = re.compile(rf"^{' ' * indent}{re.escape(part)}:")
        start = next(i for i in range(start, len(lines)) if pattern.match(lines[i]))
        indent += 2
    end = start + 1
    own = indent - 2
    while end < len(lines) and (
        lines[end].startswith(" " * own + "- ")
        or (lines[end].strip() and len(lines[end]) - len(lines[end].lstrip()) > own + 2)
    ):
        end += 1
    return start, end


def rewrite_problems(text: str, tmp: Path) -> list[str]:
    """For each key, `dvc exp run -S <key>=<other>`'s rewrite, and what it changed elsewhere."""
    from dvc.utils.hydra import apply_overrides

    path = tmp / "params.yaml"
    problems = []
    for key, value in leaves(yamlio.parse(text, "params.yaml")):
        path.write_text(text)
        apply_overrides(path, [f"{key}={other_value(value)}"])
        before, after = text.splitlines(), path.read_text().splitlines()
        b0, b1 = block(before, key)
        a0, a1 = block(after, key)
        if before[:b0] + before[b1:] != after[:a0] + after[a1:]:
            diff = difflib.unified_diff(before[:b0] + before[b1:], after[:a0] + after[a1:], n=0)
            problems.append(f"-S {key}: " + " | ".join(list(diff)[2:6]))
        if yamlio.parse(path.read_text(), "rewritten") == yamlio.parse(text, "original"):
            problems.append(f"-S {key}: nothing changed")
    return problems


def test_every_set_param_rewrite_changes_only_its_key(tmp_path: Path) -> None:
    assert rewrite_problems((REPO / "params.yaml").read_text(encoding="utf-8"), tmp_path) == []


def test_the_rewrite_check_catches_flow_lists_and_a_lost_blank_line(tmp_path: Path) -> None:
    """Negative control: the layouts DVC's rewrite damages (the shapes params.yaml avoids)."""
    flow = "a:\n  x: 1\n  words: [not, never]\n"
    assert any(p.startswith("-S a.x:") for p in rewrite_problems(flow, tmp_path))
    trailing = "a:\n  x: 1\n  words:\n  - not\n\nb:\n  y: 2\n"
    assert any(p.startswith("-S a.words:") for p in rewrite_problems(trailing, tmp_path))


def test_values_mean_what_dvc_reads(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    shipped = (REPO / "params.yaml").read_text(encoding="utf-8")
    assert "\n  - no\n" in shipped  # bare: a word in YAML 1.2, false in YAML 1.1
    params.write_text(shipped.replace("learning_rate: 8.0e-5", "learning_rate: 5e-5"))
    loaded = load_params(params)
    assert "no" in loaded.slices.negation_words
    assert loaded.train.learning_rate == 5e-5  # PyYAML would read the string '5e-5'
    assert loaded.drift.num_method is None  # an empty value is null


@pytest.mark.parametrize("word", ["false", "true"])
def test_a_yaml_boolean_among_words_names_the_fix(tmp_path: Path, word: str) -> None:
    from textclf.errors import ConfigError

    params = tmp_path / "params.yaml"
    params.write_text(
        (REPO / "params.yaml").read_text().replace("\n  - never\n", f"\n  - {word}\n")
    )
    with pytest.raises(ConfigError, match=r"slices\.negation_words.*YAML booleans.*quote them"):
        load_params(params)
