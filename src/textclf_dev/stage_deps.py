"""Each DVC stage's code deps are the import closure of its module: check them, or rewrite them.

``python -m textclf_dev.stage_deps`` prints what ``dvc.yaml`` gets wrong (exit 1 when anything);
``--write`` replaces each stage's ``src/`` deps with its closure, file by file, keeping the
other deps, the comments and the order of everything else. Run it after adding an import to a
stage (``tests/unit/test_stage_deps.py`` fails until you do).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from textclf_dev.imports import closure

STAGE_PACKAGE = "textclf.stages"


def stage_closure(src: Path, name: str) -> set[str]:
    """The files (relative to the repository, ``src/...``) stage ``name``'s module imports."""
    repo = src.parent
    return {p.relative_to(repo).as_posix() for p in closure(src, f"{STAGE_PACKAGE}.{name}")}


def code_deps(stage: dict[str, Any], repo: Path) -> set[str]:
    """A stage's deps under ``src/``, a listed directory standing for its ``.py`` files."""
    found: set[str] = set()
    for dep in stage.get("deps", []):
        if not dep.startswith("src/"):
            continue
        path = repo / dep
        if path.is_dir():
            found |= {p.relative_to(repo).as_posix() for p in path.rglob("*.py")}
        else:
            found.add(dep)
    return found


def dep_problems(name: str, stage: dict[str, Any], src: Path) -> list[str]:
    """What ``dvc.yaml`` gets wrong about stage ``name``'s code deps, one line per file."""
    wanted, listed = stage_closure(src, name), code_deps(stage, src.parent)
    missing = [
        f"{name}: {f} is imported but not in its deps: add it" for f in sorted(wanted - listed)
    ]
    extra = [
        f"{name}: {f} is in its deps but not imported: remove it" for f in sorted(listed - wanted)
    ]
    return missing + extra


def stage_modules(src: Path) -> list[str]:
    """The stage modules: every ``textclf/stages/<name>.py``."""
    folder = src.joinpath(*STAGE_PACKAGE.split("."))
    return sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")


def problems(repo: Path) -> list[str]:
    """Every stage's problems, for ``dvc.yaml`` and ``src/`` under ``repo``."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    src = repo / "src"
    return [
        p
        for name in stage_modules(src)
        if name in stages
        for p in dep_problems(name, stages[name], src)
    ]


def rewrite(text: str, src: Path) -> str:
    """``dvc.yaml``'s text with each stage module's ``src/`` deps replaced by its closure."""
    modules = set(stage_modules(src))
    out: list[str] = []
    stage, in_deps = None, False
    for line in text.splitlines(keepends=True):
        if match := re.match(r"^  ([\w-]+):\s*(#.*)?$", line):
            stage = match[1]
        if in_deps and not line.startswith("      - "):
            if stage in modules:
                out += [f"      - {f}\n" for f in sorted(stage_closure(src, stage))]
            in_deps = False
        if line.strip() == "deps:":
            in_deps = True
        elif in_deps and line.startswith("      - src/") and stage in modules:
            continue
        out.append(line)
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    """Print the problems (exit 1 when any); ``--write`` fixes them in place."""
    args = sys.argv[1:] if argv is None else argv
    repo = Path.cwd()
    if "--write" in args:
        target = repo / "dvc.yaml"
        target.write_text(
            rewrite(target.read_text(encoding="utf-8"), repo / "src"), encoding="utf-8"
        )
    found = problems(repo)
    print(
        "\n".join(found) if found else "dvc.yaml: every stage's code deps equal its import closure"
    )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
