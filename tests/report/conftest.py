"""Fixtures of the review tests: real stage outputs of the tiny model, in throwaway git repos."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.exported import TinyExport, exported
from textclf.report.sources import sources

__all__ = ["exported"]

# The files the review reads that the tiny export (plus the slices stage) writes.
REPORT_FILES = (
    "prepare",
    "train",
    "evaluate",
    "confusion",
    "export",
    "slices",
    *[key for key in sources() if key.startswith("curve:")],
)


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` (fails the test with git's message)."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def params_yaml(params: Any) -> str:
    """The tiny run's params as params.yaml text."""
    return yaml.safe_dump(json.loads(params.model_dump_json()), sort_keys=False)


def gate_yaml(**gate: Any) -> str:
    """A gate.yaml with the defaults and ``gate`` keys overridden."""
    from textclf.config.gate import GateParams

    return yaml.safe_dump(GateParams(**gate).model_dump(), sort_keys=False)


@pytest.fixture(scope="session")
def real_outputs(exported: TinyExport) -> dict[str, str]:
    """The texts of the files the tiny pipeline wrote, by source key (slices run here)."""
    from textclf.stages import slices

    slices.run(exported.params, exported.paths)
    out = {}
    for key in REPORT_FILES:
        path = exported.root / sources()[key].path
        assert path.is_file(), path
        out[key] = path.read_text(encoding="utf-8")
    out["params"] = params_yaml(exported.params)
    out["gate"] = gate_yaml()
    return out


class Repo:
    """A git repository whose ``main`` holds one set of files and whose workspace another."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.email", "review@example.com")
        git(root, "config", "user.name", "review test")

    def write(self, files: Mapping[str, str | None]) -> None:
        """Write (or with None, delete) the sources named by key."""
        for key, text in files.items():
            path = self.root / sources()[key].path
            if text is None:
                path.unlink(missing_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")

    def commit(self, message: str) -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-qm", message, "--allow-empty")
        return git(self.root, "rev-parse", "HEAD").strip()

    def branch(self, name: str) -> None:
        git(self.root, "checkout", "-qb", name)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """An empty git repository on branch main."""
    return Repo(tmp_path / "repo")


def edit_json(text: str, change: Callable[[dict[str, Any]], None]) -> str:
    """``text`` (JSON) after ``change`` edited the parsed dict in place."""
    data = json.loads(text)
    change(data)
    return json.dumps(data, indent=2)
