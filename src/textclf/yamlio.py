"""YAML read the way DVC reads and writes it: YAML 1.2, with ruamel.yaml's safe loader.

DVC parses ``params.yaml`` with ``ruamel.yaml`` and ``dvc exp run --set-param`` writes it back
in YAML 1.2 style, so a quoted ``"no"`` may come back bare. PyYAML (YAML 1.1) would then read
``false``, and ``5e-5`` as a string; reading with the same loader as DVC gives every value the
meaning DVC saw when it decided which stages to rerun.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from textclf.errors import ConfigError


def parse(text: str, source: str) -> Any:
    """Parse YAML 1.2 text; raise :class:`ConfigError` naming ``source`` and the line."""
    try:
        return YAML(typ="safe").load(text)
    except YAMLError as err:
        raise ConfigError(f"{source} is not valid YAML: {err}") from None


def read(path: Path) -> Any:
    """Parse a YAML file (see :func:`parse`); a missing file is a :class:`ConfigError`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path} cannot be read: {err.strerror}") from None
    return parse(text, str(path))
