"""Run one benchmark function in a fresh Python process, so its memory and threads are its own.

:func:`run_child` starts ``python -m textclf_dev.bench.child SPEC OUT``; the child imports
``module:function``, calls it with the JSON keyword arguments in ``SPEC``, and writes the result
with its own peak RSS (``VmHWM``) to ``OUT``. A :class:`TextclfError` in the child comes back as
the same kind of error with the same message; a crash comes back with the child's output.
The child stays in the caller's process group, so Ctrl-C stops it too.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from textclf import errors, io
from textclf.errors import ArtifactError, TextclfError
from textclf_dev.bench.system import self_peak_rss_mb


def run_child(
    target: str, kwargs: dict[str, Any] | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Call ``target`` (``"module:function"``) in a child process; its result and peak RSS.

    Returns ``{"result": <what the function returned>, "peak_rss_mb": <child's VmHWM>}``.
    """
    with tempfile.TemporaryDirectory(prefix="textclf-bench-") as tmp:
        spec, out, log = Path(tmp) / "spec.json", Path(tmp) / "out.json", Path(tmp) / "log.txt"
        io.write_json(spec, {"target": target, "kwargs": kwargs or {}})
        with log.open("wb") as fh:
            proc = subprocess.run(
                [sys.executable, "-m", "textclf_dev.bench.child", str(spec), str(out)],
                env={**os.environ, **(env or {})},
                stdout=fh,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if out.is_file():
            payload: dict[str, Any] = io.read_json(out)
            if "error" in payload:
                kind = getattr(errors, payload["error"]["type"], None)
                if not (isinstance(kind, type) and issubclass(kind, TextclfError)):
                    kind = ArtifactError
                raise kind(payload["error"]["message"])
            return {"result": payload["result"], "peak_rss_mb": payload["peak_rss_mb"]}
        tail = log.read_text(encoding="utf-8", errors="replace")[-6000:]
        raise ArtifactError(
            f"benchmark {target} crashed in its child process (exit code "
            f"{proc.returncode}). Its output ends with:\n{tail}"
        )


def main(argv: list[str]) -> int:
    """Child entry point: ``SPEC OUT`` (see :func:`run_child`)."""
    spec, out = (Path(a) for a in argv)
    call = io.read_json(spec)
    module_name, _, func_name = call["target"].partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        result = func(**call["kwargs"])
    except TextclfError as err:
        io.write_json(out, {"error": {"type": type(err).__name__, "message": str(err)}})
        return 2
    io.write_json(out, {"result": result, "peak_rss_mb": self_peak_rss_mb()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
