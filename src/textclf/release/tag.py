"""The release tags: content addresses of exactly what each image ships.

Two images are released, each with its own tag, so that one changes exactly when its own bytes
change:

* ``serving`` (``m-<12 hex>``): the service, built twice from one bento definition,
  ``bentofile.yaml`` (CPU) and ``bentofile.gpu.yaml`` (CUDA); both images carry the same tag;
* ``drift`` (``d-<12 hex>``): the drift CronJob, built from ``images/drift.yaml``.

A tag is ``<prefix>`` + the first 12 hex digits of the SHA-256 of a manifest of lines::

    textclf-release-tag/1
    out <path> <md5 in dvc.lock>        one line per DVC output the image ships
    file <path> <sha256 of the bytes>   one line per git file the image ships or builds with

sorted by path, where the shipped outputs are the ``dvc.lock`` outputs that hold an ``include``
entry of the image's definitions, and the files are the definitions themselves, the build files
they name (``python.requirements_txt``, ``docker.dockerfile_template``, ``docker.setup_script``,
``containerfile``) and every file git tracks (or would: untracked, not ignored) that an
``include`` pattern matches. The bentofiles list the serving closure file by file (a test
compares it with the imports of ``textclf.serving.service``), so editing the report, the gate, a
benchmark or training code keeps the serving tag, and editing serving code changes it. Files are
hashed from the working tree (so ``release manifests`` names the tag before the commit) or from a
commit (``--rev``). The same commit always gives the same tags; a ``git revert`` gives the old
ones, whose images already exist.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from textclf.errors import ReleaseError
from textclf.release.git import Tree, load_yaml
from textclf.release.lock import LockOut, lock_outputs, verify_outputs

TAG_DIGITS = 12
FORMAT_LINE = "textclf-release-tag/1"
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Image:
    """One released image: its tag prefix and the definition files of its variants."""

    key: str
    prefix: str
    #: variant -> the definition it is built from (a bentofile, or an image.yaml).
    variants: dict[str, str]

    @property
    def definitions(self) -> list[str]:
        return list(self.variants.values())


IMAGES: dict[str, Image] = {
    "serving": Image("serving", "m-", {"cpu": "bentofile.yaml", "gpu": "bentofile.gpu.yaml"}),
    "drift": Image("drift", "d-", {"drift": "images/drift.yaml"}),
}
#: variant -> image key
VARIANTS: dict[str, str] = {v: image.key for image in IMAGES.values() for v in image.variants}


@dataclass(frozen=True)
class ReleaseInputs:
    """What a tag is computed from: shipped DVC outputs and shipped files, with their hashes."""

    image: Image
    outs: dict[str, LockOut]
    files: dict[str, str]
    where: str
    lock_outs: dict[str, LockOut] = field(default_factory=dict)

    def manifest(self) -> str:
        """The text whose SHA-256 is the tag (also printed by ``release tag --explain``)."""
        lines = [FORMAT_LINE]
        lines += [f"out {path} {self.outs[path].md5}" for path in sorted(self.outs)]
        lines += [f"file {path} {self.files[path]}" for path in sorted(self.files)]
        return "\n".join(lines) + "\n"

    @property
    def tag(self) -> str:
        digest = hashlib.sha256(self.manifest().encode()).hexdigest()
        return f"{self.image.prefix}{digest[:TAG_DIGITS]}"


def _covering_out(pattern: str, outs: Iterable[str]) -> list[str]:
    """The dvc.lock outputs an include pattern reaches into (itself, or a path below it)."""
    pattern = pattern.lstrip("/").rstrip("/")
    glob = _GLOB_CHARS.search(pattern)
    literal = pattern[: glob.start()] if glob else pattern
    hits = []
    for out in outs:
        inside = pattern == out or pattern.startswith(out + "/")
        if inside or (glob and (out.startswith(literal) or literal.startswith(out + "/"))):
            hits.append(out)
    return hits


@dataclass(frozen=True)
class Definition:
    """A build definition's include and exclude patterns, and the build files it names."""

    path: str
    include: list[str]
    exclude: list[str]
    build_files: list[str]


def read_definition(tree: Tree, path: str) -> Definition:
    """A bentofile or image.yaml: what it ships (include/exclude) and builds with.

    The build files (``python.requirements_txt``, ``docker.setup_script``,
    ``docker.dockerfile_template``, ``containerfile``) decide what the image installs, so they
    count like shipped files.
    """
    spec = load_yaml(tree, path, "the image definition is missing")
    if not isinstance(spec, dict):
        raise ReleaseError(f"{path} in {tree.where} is not a mapping")
    include = [str(p) for p in spec.get("include") or []]
    exclude = [str(p) for p in spec.get("exclude") or []]
    if not include:
        raise ReleaseError(f"{path} has no `include:` list: name the files the image ships")
    python, docker = spec.get("python") or {}, spec.get("docker") or {}
    named = [
        python.get("requirements_txt"),
        docker.get("setup_script"),
        docker.get("dockerfile_template"),
        spec.get("containerfile"),
    ]
    return Definition(path, include, exclude, [str(n) for n in named if n])


def release_inputs(tree: Tree, image: str = "serving") -> ReleaseInputs:
    """Collect the shipped outputs (from dvc.lock) and shipped files of ``image``, hashed."""
    import pathspec

    spec = IMAGES[image]
    definitions = [spec.definitions[0]]
    definitions += [d for d in spec.definitions[1:] if tree.read(d) is not None]
    lock = load_yaml(
        tree, "dvc.lock", "run `dvc repro` to produce the model outputs and commit dvc.lock"
    )
    lock_outs = lock_outputs(lock, f"dvc.lock in {tree.where}")

    shipped: dict[str, LockOut] = {}
    extra: set[str] = set(definitions)
    include_all: list[str] = []
    exclude_all: list[str] = []
    for path in definitions:
        definition = read_definition(tree, path)
        exclude_all += definition.exclude
        for build_file in definition.build_files:
            if tree.read(build_file) is None:
                raise ReleaseError(
                    f"{path} names {build_file!r}, which is not in {tree.where}: add it "
                    "to git or drop the setting"
                )
            extra.add(build_file)
        for pattern in definition.include:
            hits = _covering_out(pattern, lock_outs)
            for out in hits:
                shipped[out] = lock_outs[out]
            if not hits:
                include_all.append(pattern)

    include_spec = pathspec.PathSpec.from_lines("gitwildmatch", include_all)
    exclude_spec = pathspec.PathSpec.from_lines("gitwildmatch", exclude_all)
    files = {
        f
        for f in tree.files
        if include_spec.match_file(f)
        and not exclude_spec.match_file(f)
        and not any(f == o or f.startswith(o + "/") for o in shipped)
    }
    for pattern in include_all:
        literal = pattern.lstrip("/")
        if not _GLOB_CHARS.search(literal) and literal not in files:
            raise ReleaseError(
                f"the image definition includes {literal!r}, but it is neither an output in "
                f"dvc.lock nor a file in {tree.where}. If a pipeline stage writes it, run "
                "`dvc repro` and commit dvc.lock; otherwise add the file to git or drop it "
                "from `include:`."
            )
    blobs = tree.read_many(sorted(files | extra))
    hashes = {path: hashlib.sha256(data).hexdigest() for path, data in blobs.items()}
    return ReleaseInputs(spec, shipped, hashes, tree.where, lock_outs)


def compute(
    root: Path, rev: str | None = None, *, image: str = "serving", verify: bool = True
) -> ReleaseInputs:
    """The release inputs of ``image`` in ``root`` (or commit ``rev``); ``verify``: dvc status."""
    inputs = release_inputs(Tree(root, rev), image)
    if verify and rev is None:
        verify_outputs(root, inputs)
    return inputs


def tags(root: Path, rev: str | None = None, *, verify: bool = True) -> dict[str, str]:
    """The tag of every image (``serving``, ``drift``)."""
    return {key: compute(root, rev, image=key, verify=verify).tag for key in IMAGES}


def shipped_outputs(root: Path, rev: str | None = None) -> list[str]:
    """Every DVC output some image ships (what the release pulls)."""
    outs: set[str] = set()
    for key in IMAGES:
        outs |= set(compute(root, rev, image=key, verify=False).outs)
    return sorted(outs)


def stage_context(root: Path, variant: str, dest: Path) -> list[str]:
    """Copy what ``variant``'s definition ships (workspace bytes) into ``dest``; the paths.

    The shipped outputs must match dvc.lock (``dvc status``), so the context holds the bytes the
    tag names: the listed files of each output, not everything its stage wrote.
    """
    import shutil

    key = VARIANTS[variant]
    inputs = compute(root, image=key)
    definition = read_definition(Tree(root), IMAGES[key].variants[variant])
    included = {p.lstrip("/") for p in definition.include}
    paths = sorted(set(inputs.files) - set(definition.build_files) - set(IMAGES[key].definitions))
    paths += sorted(definition.build_files)
    for out in inputs.outs:
        base = root / out
        found = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        rels = [p.relative_to(root).as_posix() for p in found]
        paths += [r for r in rels if r in included or out in included]
    if dest.exists() and any(dest.iterdir()):
        raise ReleaseError(f"{dest} is not empty: give a new or empty directory")
    for rel in paths:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    return paths
