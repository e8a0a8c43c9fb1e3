"""Files of a checkout, from the working tree or from one commit: what the release reads.

Everything the release decides (the tag, the overlays it checks) is read through a :class:`Tree`,
so the same code judges the workspace (``make release-manifests``) and a commit (``--rev``: what
was reviewed or merged, whatever a retrain rewrote in the workspace).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from textclf.errors import ReleaseError
from textclf.gitcmd import run_git


def git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run git in ``root``; raise ReleaseError with git's message on failure."""
    proc = run_git(
        root, *args, why="the release tag is computed from git", stdin=stdin, timeout=None
    )
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip()
        raise ReleaseError(f"`git {' '.join(args)}` failed in {root}: {message}")
    return proc.stdout


class Tree:
    """The files of a checkout: the working tree, or a commit when ``rev`` is given."""

    def __init__(self, root: Path, rev: str | None = None) -> None:
        self.root = Path(root)
        self.rev = rev
        if rev is None:
            listed = git(self.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
            names = {n for n in listed.decode().split("\0") if n}
            self.files = sorted(n for n in names if (self.root / n).is_file())
        else:
            try:
                commit = git(self.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
            except ReleaseError as err:
                raise ReleaseError(
                    f"{rev!r} is not a commit of the git repository {root}: "
                    "give a branch, tag or commit (e.g. HEAD)"
                ) from err
            self.commit = commit.decode().strip()
            listed = git(self.root, "ls-tree", "-r", "-z", "--name-only", self.commit)
            self.files = sorted(n for n in listed.decode().split("\0") if n)
        self._known = set(self.files)

    @property
    def where(self) -> str:
        return f"commit {self.rev}" if self.rev else f"the working tree of {self.root}"

    def read(self, path: str) -> bytes | None:
        """The bytes of ``path``, or None when the tree has no such file."""
        if path not in self._known:
            return None
        if self.rev is None:
            return (self.root / path).read_bytes()
        return git(self.root, "cat-file", "blob", f"{self.commit}:{path}")

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        """The bytes of several files present in the tree (one git process for a commit)."""
        if self.rev is None:
            return {p: (self.root / p).read_bytes() for p in paths}
        request = "".join(f"{self.commit}:{p}\n" for p in paths).encode()
        out = git(self.root, "cat-file", "--batch", stdin=request)
        blobs: dict[str, bytes] = {}
        pos = 0
        for path in paths:
            header_end = out.index(b"\n", pos)
            size = int(out[pos:header_end].split()[2])
            blobs[path] = out[header_end + 1 : header_end + 1 + size]
            pos = header_end + 1 + size + 1
        return blobs


def load_yaml(tree: Tree, path: str, hint: str) -> Any:
    """The parsed YAML file ``path`` of ``tree``; ReleaseError with ``hint`` when it is absent."""
    raw = tree.read(path)
    if raw is None:
        raise ReleaseError(f"{path} not found in {tree.where}: {hint}")
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ReleaseError(f"{path} in {tree.where} is not valid YAML: {err}") from err
