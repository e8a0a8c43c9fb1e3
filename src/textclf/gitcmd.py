"""Running git: the one place the package starts a git process (review report and release)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from textclf.errors import TextclfError


def run_git(
    root: Path, *args: str, why: str, stdin: bytes | None = None, timeout: float | None = 60
) -> subprocess.CompletedProcess[bytes]:
    """``git args`` in ``root``, output captured; its return code is the caller's to judge.

    Raises :class:`TextclfError` when git is not installed, naming ``why`` the caller needs it.
    """
    try:
        return subprocess.run(
            ["git", *args], cwd=root, input=stdin, capture_output=True, check=False, timeout=timeout
        )
    except FileNotFoundError:
        raise TextclfError(f"git is not installed. Fix: install git ({why}).") from None
