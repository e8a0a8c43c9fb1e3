"""Running DVC from the package: this interpreter's DVC, with its ``bin`` first on PATH.

``dvc repro`` runs the stages' ``textclf`` commands, so the environment that imports textclf is
the one DVC's children must find.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_dvc(
    root: Path, *args: str, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """``dvc args`` in ``root``, output captured as text; its return code is the caller's."""
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
