"""Atomic writes leave whole files with ordinary permissions (images copy them as they are)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from textclf import io


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_files_and_dirs_get_the_mode_open_would_give(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        io.write_text(tmp_path / "a.txt", "x")
        with io.atomic_dir(tmp_path / "out") as out:
            (out / "f").write_text("y")
    finally:
        os.umask(mask)
    assert _mode(tmp_path / "a.txt") == 0o644  # not mkstemp's 0600
    assert _mode(tmp_path / "out") == 0o755  # not mkdtemp's 0700
    assert (tmp_path / "out" / "f").read_text() == "y"


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), io.atomic_path(tmp_path / "b.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
