"""Typed params: the shipped params.yaml is valid; bad keys and values fail with a fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tests.conftest import REPO, tiny_params
from textclf import yamlio
from textclf.config.gate import GateParams
from textclf.config.params import Params, load_params, parse_params
from textclf.config.serve import ServeParams
from textclf.errors import ConfigError


def test_shipped_params_are_valid_and_complete() -> None:
    params = load_params(REPO / "params.yaml")
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    # Every section of the model is spelled out in the file a user edits.
    assert set(raw) == set(Params.model_fields)
    assert params.data.labels == ["negative", "neutral", "positive"]


def default_problems(
    model: type[BaseModel], raw: Any, validated: BaseModel, prefix: str = ""
) -> list[str]:
    """Every knob of ``model`` that its file leaves out, or whose typed default differs from the
    file's value (a section is checked key by key)."""
    problems: list[str] = []
    raw = raw if isinstance(raw, dict) else {}
    for name, field in model.model_fields.items():
        key, value = f"{prefix}{name}", getattr(validated, name)
        if isinstance(value, BaseModel):
            problems += default_problems(type(value), raw.get(name), value, f"{key}.")
            continue
        if name not in raw:
            problems.append(f"{key}: not in the file")
        if not field.is_required() and field.get_default(call_default_factory=True) != value:
            default = field.get_default(call_default_factory=True)
            problems.append(f"{key}: typed default {default!r}, the file says {value!r}")
    return problems


FILES = [(Params, "params.yaml"), (ServeParams, "serve.yaml"), (GateParams, "gate.yaml")]


@pytest.mark.parametrize(("model", "name"), FILES)
def test_the_files_name_every_knob_and_the_defaults_agree(
    model: type[BaseModel], name: str
) -> None:
    """One source of defaults: a key left out of the file means what the file says today."""
    raw = yamlio.read(REPO / name)
    assert default_problems(model, raw, model.model_validate(raw)) == []


def test_a_disagreeing_default_or_a_missing_knob_is_found() -> None:
    """Negative control of the test above, on edited copies of params.yaml."""
    raw = yamlio.read(REPO / "params.yaml")
    raw["train"] = {**raw["train"], "learning_rate": 1e-3}
    del raw["slices"]["min_support"]
    assert default_problems(Params, raw, Params.model_validate(raw)) == [
        "train.learning_rate: typed default 8e-05, the file says 0.001",
        "slices.min_support: not in the file",
    ]


def test_params_are_frozen() -> None:
    params = parse_params(tiny_params())
    with pytest.raises(Exception, match="frozen"):
        params.train.epochs = 3  # type: ignore[misc]


def test_unknown_key_names_key_and_suggests_fix() -> None:
    raw = tiny_params(train={"learning_rat": 1e-3})
    with pytest.raises(ConfigError) as err:
        parse_params(raw)
    msg = str(err.value)
    assert "unknown key 'train.learning_rat'" in msg
    assert "did you mean 'learning_rate'" in msg


def test_bad_value_names_key_value_and_fix() -> None:
    with pytest.raises(ConfigError) as err:
        parse_params(tiny_params(train={"learning_rate": -1, "batch_size": 0}))
    msg = str(err.value)
    assert "train.learning_rate = -1 is invalid" in msg
    assert "Fix: peak AdamW learning rate" in msg
    assert "train.batch_size = 0 is invalid" in msg


@pytest.mark.parametrize(
    ("section", "values", "fragment"),
    [
        ("data", {"labels": ["only"]}, "at least two labels"),
        ("data", {"labels": ["a", "a"]}, "repeated: ['a']"),
        ("prepare", {"test_size": 0.5, "val_size": 0.45}, "leaves under 10%"),
        ("prepare", {"test_size": 1.5}, "prepare.test_size = 1.5"),
        ("train", {"precision": "8-bit"}, "train.precision = '8-bit'"),
        ("model", {"max_length": 4}, "model.max_length = 4"),
    ],
)
def test_invalid_values_are_rejected(section: str, values: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        parse_params(tiny_params(**{section: values}))
    assert fragment in str(err.value)


def test_missing_data_section_says_what_to_add() -> None:
    with pytest.raises(ConfigError, match="missing key 'data'"):
        parse_params({})


def test_integer_labels_are_accepted_as_strings() -> None:
    params = parse_params(tiny_params(data={"labels": [0, 1]}))
    assert params.data.labels == ["0", "1"]


def test_load_params_reports_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_cli_check_params_exits_2_with_message(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from textclf.cli import app

    bad = tmp_path / "params.yaml"
    bad.write_text(yaml.safe_dump(tiny_params(train={"epochs": 0})))
    result = CliRunner().invoke(app, ["check-params", "--params", str(bad)])
    assert result.exit_code == 2
    assert "train.epochs = 0 is invalid" in result.output
