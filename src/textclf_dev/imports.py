"""The import closure of a module inside a source tree, read from the code (nothing is imported).

What the serving image must ship is the closure of ``textclf.serving.service``; a test compares
it with the bentofiles' ``include:`` lists, so a new import cannot be left out of the image (or a
module that serving does not import left in it). Every ``import``/``from ... import`` counts,
also inside functions: a lazy import runs in the image too.
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_file(src: Path, name: str) -> Path | None:
    """The file of module ``name`` under ``src`` (a module or a package's ``__init__.py``)."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(src: Path, path: Path, name: str, package: str) -> set[str]:
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                target = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] == package and module_file(src, m)}


def closure(src: Path, *modules: str) -> set[Path]:
    """Every file under ``src`` that importing ``modules`` loads (their packages' too)."""
    package = modules[0].split(".")[0]
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        path = module_file(src, name)
        if name in seen or path is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += sorted(_imported(src, path, name, package))
    return {p for m in seen if (p := module_file(src, m)) is not None}
