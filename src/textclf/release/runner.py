"""The review runners' image: its content tag, its build context, and its pin in values.yaml.

An ephemeral GPU runner starts empty, and the review's ``make install EXTRAS=gpu,dev`` then
downloads the CUDA build of torch and the rest of the gpu and dev extras (about 3.5 GB) on every
run. ``images/review-runner.Containerfile`` bakes exactly ``requirements/review-gpu.txt`` (hash
locked by ``make lock``) into the runner image, so ``make install LOCK=requirements/review-gpu.txt``
on that runner downloads nothing.

* :func:`tag`: ``r-<12 hex>``, a hash of the Containerfile and the lock (the only files the image
  is built from), so the same content always gets the same tag and a changed lock a new one;
* :func:`stage_context`: those two files, nothing else, as the build context;
* :func:`lock_problems`: what the lock misses of pyproject.toml (run by ``make lint``);
* :func:`pin`: write ``<repository>:<tag>@<digest>`` into ``deploy/runners/values.yaml`` once the
  image workflow on main pushed it (the digest read from the registry, never typed by hand).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from textclf.errors import ReleaseError
from textclf.release import registry
from textclf.release.git import Tree
from textclf.release.overlays import edit_yaml, roundtrip_yaml

CONTAINERFILE = "images/review-runner.Containerfile"
LOCK = "requirements/review-gpu.txt"
#: What the image is built from, in this order (the tag hashes them; the context holds them).
FILES = (CONTAINERFILE, LOCK)
VALUES = "deploy/runners/values.yaml"
#: What the lock holds: the project's dependencies with these extras, and its build backend.
EXTRAS = ("gpu", "dev")
#: The platform the lock is compiled for (`make lock`) and the runners run.
MARKERS = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
PREFIX = "r-"
RUNNER_CONTAINER = "runner"


def tag(root: Path, rev: str | None = None) -> str:
    """``r-<12 hex>``: sha256 over each file's path and bytes, from the workspace or ``rev``."""
    tree = Tree(root, rev)
    digest = hashlib.sha256()
    for path in FILES:
        data = tree.read(path)
        if data is None:
            raise ReleaseError(f"{path} is missing in {tree.where}: restore it from git")
        digest.update(path.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return PREFIX + digest.hexdigest()[:12]


def stage_context(root: Path, dest: Path) -> list[str]:
    """Copy :data:`FILES` (and only them) from ``root`` into the empty directory ``dest``."""
    if dest.exists() and any(dest.iterdir()):
        raise ReleaseError(f"{dest} is not empty: give a new or empty directory")
    for path in FILES:
        source = root / path
        if not source.is_file():
            raise ReleaseError(f"{source} not found: restore it from git")
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest / path)
    return list(FILES)


def _locked(text: str) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def lock_problems(root: Path) -> list[str]:
    """Each dependency of pyproject.toml (gpu and dev extras, build backend) the lock misses."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    lock_path = root / LOCK
    if not lock_path.is_file():
        return [f"{LOCK} is missing. Fix: make lock"]
    pins = _locked(lock_path.read_text(encoding="utf-8"))
    project = pyproject.get("project", {})
    wanted = [("dependencies", r) for r in project.get("dependencies", [])]
    extras = project.get("optional-dependencies", {})
    for extra in EXTRAS:
        wanted += [(f"[{extra}]", r) for r in extras.get(extra, [])]
    wanted += [("build-system", r) for r in pyproject.get("build-system", {}).get("requires", [])]
    problems = []
    for where, spec in wanted:
        try:
            req = Requirement(spec)
        except InvalidRequirement as err:
            problems.append(f"pyproject.toml {where}: {spec!r} is not a requirement: {err}")
            continue
        if req.marker is not None and not req.marker.evaluate({**MARKERS, "extra": ""}):
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"pyproject.toml {where} asks for {spec!r}; {LOCK} has no {req.name}")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(
                f"pyproject.toml {where} asks for {spec!r}; {LOCK} pins {req.name}=={version}"
            )
    return [f"{p}. Fix: make lock, then commit {LOCK}" for p in problems]


def _runner(doc: Any, path: Path) -> Any:
    containers = (((doc or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    found = [c for c in containers if c.get("name") == RUNNER_CONTAINER]
    if len(found) != 1:
        raise ReleaseError(
            f"{path} must have exactly one template.spec.containers entry named "
            f"{RUNNER_CONTAINER!r} (the chart runs it)"
        )
    return found[0]


def pinned(root: Path) -> str:
    """The runner image ``values.yaml`` names."""
    path = root / VALUES
    doc = roundtrip_yaml().load(path.read_text(encoding="utf-8"))
    return str(_runner(doc, path).get("image", ""))


def pin(root: Path, repository: str) -> tuple[str, bool]:
    """Pin ``repository:<tag of root>@<registry digest>`` in values.yaml; (the image, changed?).

    Fails, writing nothing, while the registry has no image under that tag: the image workflow
    on main (runner-image.yml) pushes it after the lock or the Containerfile changed.
    """
    ref = f"{repository}:{tag(root)}"
    found = registry.digest(ref)
    if found is None:
        raise ReleaseError(
            f"{ref} is not in the registry. Fix: merge the change to main and let "
            ".github/workflows/runner-image.yml build and push it, then run this again"
        )
    image = f"{ref}@{found}"
    path = root / VALUES
    if not path.is_file():
        raise ReleaseError(f"{path} not found: restore it from git (`git checkout -- {VALUES}`)")

    def write(doc: Any) -> None:
        _runner(doc, path)["image"] = image

    return image, edit_yaml(path, write)
