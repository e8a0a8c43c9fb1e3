"""``textclf release``: the image tag derived from committed content, and the manifests naming it.

The release tag is a content address: the same commit always gives the same tag, and a
``git revert`` of a model change gives back the old tag, whose image already exists.

Tag formula (``m-`` + the first 12 hex digits of the SHA-256 of a manifest of lines)::

    textclf-release-tag/1
    out <path> <md5 in dvc.lock>        one line per DVC output the bentos ship
    file <path> <sha256 of the bytes>   one line per git file the bentos ship

sorted by path, where

* the shipped DVC outputs are the ``dvc.lock`` outputs that hold an ``include`` entry of
  ``bentofile.yaml`` or ``bentofile.gpu.yaml`` (today ``artifacts/onnx`` and ``artifacts/drift``).
  The md5 is the one ``dvc.lock`` records, so the tag is known without the files (``--rev``) and
  ``dvc status`` (``release check``) proves that the files on disk are those;
* the shipped files are the bentofiles themselves, their ``docker.setup_script``
  (``bento/setup.sh``), and every file git tracks, or would track (untracked but not ignored),
  that an ``include`` pattern matches and no ``exclude`` pattern drops: ``src/textclf/**/*.py``,
  ``src/textclf/py.typed``, ``params.yaml``. Files are hashed as bytes, from the working tree by
  default (so ``release manifests`` can name the tag before the commit) or from a commit with
  ``--rev``. Nothing else counts: README, tests, ``deploy/`` or ``dvc.yaml`` edits keep the tag.

One tag names both images: ``<cpu image>:<tag>`` (bentofile.yaml) and ``<gpu image>:<tag>``
(bentofile.gpu.yaml), the repositories being the ``newName`` of the production overlays.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml

from textclf.console import fail
from textclf.dvcverify import verify_cmd
from textclf.errors import ReleaseError

TAG_PREFIX = "m-"
TAG_DIGITS = 12
FORMAT_LINE = "textclf-release-tag/1"
#: bentofile of each image variant; the first one must exist.
BENTOFILES: dict[str, str] = {"cpu": "bentofile.yaml", "gpu": "bentofile.gpu.yaml"}
#: Kustomization whose ``images:`` entry names each variant's repository (production's holds the
#: tag; production-gpu renames the repository to the GPU image).
OVERLAYS: dict[str, str] = {
    "cpu": "deploy/overlays/production/kustomization.yaml",
    "gpu": "deploy/overlays/production-gpu/kustomization.yaml",
}
TAG_OVERLAY = OVERLAYS["cpu"]
#: Staging runs the same reviewed image: `release manifests` writes the tag there too (when the
#: overlay exists), so one commit, and one revert, moves both environments.
STAGING_OVERLAY = "deploy/overlays/staging/kustomization.yaml"
REGISTRY_USER_ENV = "TEXTCLF_REGISTRY_USERNAME"
REGISTRY_PASSWORD_ENV = "TEXTCLF_REGISTRY_PASSWORD"  # pragma: allowlist secret
#: `dvc status` states of an output that is simply not in this checkout.
ABSENT = frozenset({"deleted", "not in cache"})
_GLOB_CHARS = re.compile(r"[*?\[]")
_OCI_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

Variant = Literal["cpu", "gpu"]


# --------------------------------------------------------------------------- git trees


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """Run git in ``root``; raise ReleaseError with git's message on failure."""
    try:
        proc = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True)
    except FileNotFoundError as err:
        raise ReleaseError("git is not installed: the release tag is computed from git") from err
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
            listed = _git(self.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
            names = {n for n in listed.decode().split("\0") if n}
            self.files = sorted(n for n in names if (self.root / n).is_file())
        else:
            try:
                commit = _git(self.root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
            except ReleaseError as err:
                raise ReleaseError(
                    f"{rev!r} is not a commit of the git repository {root}: "
                    "give a branch, tag or commit (e.g. HEAD)"
                ) from err
            self.commit = commit.decode().strip()
            listed = _git(self.root, "ls-tree", "-r", "-z", "--name-only", self.commit)
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
        return _git(self.root, "cat-file", "blob", f"{self.commit}:{path}")

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        """The bytes of several files present in the tree (one git process for a commit)."""
        if self.rev is None:
            return {p: (self.root / p).read_bytes() for p in paths}
        request = "".join(f"{self.commit}:{p}\n" for p in paths).encode()
        out = _git(self.root, "cat-file", "--batch", stdin=request)
        blobs: dict[str, bytes] = {}
        pos = 0
        for path in paths:
            header_end = out.index(b"\n", pos)
            size = int(out[pos:header_end].split()[2])
            blobs[path] = out[header_end + 1 : header_end + 1 + size]
            pos = header_end + 1 + size + 1
        return blobs


# --------------------------------------------------------------------------- inputs of the tag


@dataclass(frozen=True)
class LockOut:
    """One output recorded in dvc.lock."""

    stage: str
    path: str
    md5: str


@dataclass(frozen=True)
class ReleaseInputs:
    """What the tag is computed from: shipped DVC outputs and shipped files, with their hashes."""

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
        return f"{TAG_PREFIX}{digest[:TAG_DIGITS]}"


def _load_yaml(tree: Tree, path: str, hint: str) -> Any:
    raw = tree.read(path)
    if raw is None:
        raise ReleaseError(f"{path} not found in {tree.where}: {hint}")
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ReleaseError(f"{path} in {tree.where} is not valid YAML: {err}") from err


def lock_outputs(lock: Any, source: str = "dvc.lock") -> dict[str, LockOut]:
    """Every output recorded in a parsed dvc.lock (schema 2.0), by path."""
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        raise ReleaseError(
            f"{source} has no `stages:` mapping (DVC 3 schema 2.0 expected): run `dvc repro` "
            "to rewrite it"
        )
    outs: dict[str, LockOut] = {}
    for stage, entry in stages.items():
        for out in (entry or {}).get("outs") or []:
            md5 = out.get("md5")
            if not md5:
                raise ReleaseError(
                    f"{source}: output {out.get('path')!r} of stage {stage!r} has no md5: run "
                    "`dvc repro` (or `dvc commit`) to record it"
                )
            path = str(out["path"]).rstrip("/")
            outs[path] = LockOut(stage=str(stage), path=path, md5=str(md5))
    return outs


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


def _bentofile(tree: Tree, path: str) -> tuple[list[str], list[str], list[str]]:
    """A bentofile's include and exclude patterns, and the build files it names.

    The build files (``python.requirements_txt``, ``docker.setup_script``,
    ``docker.dockerfile_template``) decide what the image installs, so they count like shipped
    files.
    """
    spec = _load_yaml(tree, path, "the bento definition is missing")
    if not isinstance(spec, dict):
        raise ReleaseError(f"{path} in {tree.where} is not a mapping")
    include = [str(p) for p in spec.get("include") or []]
    exclude = [str(p) for p in spec.get("exclude") or []]
    if not include:
        raise ReleaseError(f"{path} has no `include:` list: name the files the bento ships")
    python, docker = spec.get("python") or {}, spec.get("docker") or {}
    named = [
        python.get("requirements_txt"),
        docker.get("setup_script"),
        docker.get("dockerfile_template"),
    ]
    return include, exclude, [str(n) for n in named if n]


def release_inputs(tree: Tree) -> ReleaseInputs:
    """Collect the shipped outputs (from dvc.lock) and shipped files of ``tree``, hashed."""
    import pathspec

    bentofiles = [BENTOFILES["cpu"]]
    if tree.read(BENTOFILES["gpu"]) is not None:
        bentofiles.append(BENTOFILES["gpu"])
    lock = _load_yaml(
        tree, "dvc.lock", "run `dvc repro` to produce the model outputs and commit dvc.lock"
    )
    lock_outs = lock_outputs(lock, f"dvc.lock in {tree.where}")

    shipped: dict[str, LockOut] = {}
    extra: set[str] = set(bentofiles)
    include_all: list[str] = []
    exclude_all: list[str] = []
    for bentofile in bentofiles:
        include, exclude, build_files = _bentofile(tree, bentofile)
        exclude_all += exclude
        for build_file in build_files:
            if tree.read(build_file) is None:
                raise ReleaseError(
                    f"{bentofile} names {build_file!r}, which is not in {tree.where}: add it "
                    "to git or drop the setting"
                )
            extra.add(build_file)
        for pattern in include:
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
                f"the bentofile includes {literal!r}, but it is neither an output in dvc.lock "
                f"nor a file in {tree.where}. If a pipeline stage writes it, run `dvc repro` and "
                "commit dvc.lock; otherwise add the file to git or drop it from `include:`."
            )
    blobs = tree.read_many(sorted(files | extra))
    hashes = {path: hashlib.sha256(data).hexdigest() for path, data in blobs.items()}
    return ReleaseInputs(outs=shipped, files=hashes, where=tree.where, lock_outs=lock_outs)


def uncommitted(root: Path, paths: Iterable[str]) -> list[str]:
    """Those of ``paths`` whose working-tree content differs from HEAD (or that HEAD lacks)."""
    wanted = sorted(set(paths))
    if not wanted:
        return []
    try:
        _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except ReleaseError:
        return wanted
    listed = _git(root, "status", "--porcelain", "-z", "--untracked-files=all", "--", *wanted)
    changed = set()
    for entry in listed.decode().split("\0"):
        if len(entry) > 3:
            changed.add(entry[3:])
    return [p for p in wanted if p in changed]


# --------------------------------------------------------------------------- dvc status


def dvc_status(root: Path) -> dict[str, Any]:
    """``dvc status --json`` of the whole pipeline in ``root``."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "dvc", "status", "--json"],
            cwd=root,
            capture_output=True,
            text=True,
        )
    except OSError as err:
        raise ReleaseError(f"cannot run `dvc status`: {err}") from err
    if proc.returncode != 0:
        raise ReleaseError(
            f"`dvc status` failed in {root}: {proc.stderr.strip() or proc.stdout.strip()} "
            "(is another dvc command running? wait for it, then retry)"
        )
    text = proc.stdout.strip()
    try:
        return dict(json.loads(text)) if text else {}
    except json.JSONDecodeError as err:
        raise ReleaseError(
            f"`dvc status --json` printed something else than JSON: {text[:300]}"
        ) from err


def _under(path: str, roots: Iterable[str]) -> str | None:
    path = path.rstrip("/")
    for root in roots:
        if path == root or path.startswith(root + "/"):
            return root
    return None


def status_problems(status: Mapping[str, Any], inputs: ReleaseInputs) -> list[str]:
    """What in ``dvc status`` (and dvc.lock itself) says the shipped outputs are not reviewed.

    A DVC output that is not shipped may be absent ("deleted", or "not in cache" in a fresh
    clone): the release job pulls only the shipped outputs. Every other change counts: a
    modified dependency, param or command, a shipped output that is missing or differs from
    dvc.lock. Where a missing output feeds a
    stage, dvc.lock must still record the same md5 on both sides.
    """
    dvc_outs = set(inputs.lock_outs)
    for name, entries in status.items():
        if name.endswith(".dvc"):
            for entry in entries:
                if isinstance(entry, dict):
                    dvc_outs.update(entry.get("changed outs", {}))
    problems: list[str] = []
    for name, entries in status.items():
        for entry in entries:
            if isinstance(entry, str):
                problems.append(f"{name}: {entry}")
                continue
            for kind, changes in entry.items():
                if not isinstance(changes, dict):
                    problems.append(f"{name}: {kind}")
                    continue
                for path, state in changes.items():
                    if (
                        isinstance(state, str)
                        and state in ABSENT
                        and _under(path, dvc_outs)
                        and not _under(path, inputs.outs)
                    ):
                        continue
                    shown = state if isinstance(state, str) else json.dumps(state)
                    problems.append(f"{name}: {kind} {path}: {shown}")
    return problems


def lock_problems(lock: Any, lock_outs: Mapping[str, LockOut]) -> list[str]:
    """Stages whose dvc.lock dependency md5 disagrees with the producing stage's output md5."""
    problems = []
    for stage, entry in (lock.get("stages") or {}).items():
        for dep in (entry or {}).get("deps") or []:
            out = lock_outs.get(str(dep.get("path", "")).rstrip("/"))
            if out is not None and out.stage != stage and dep.get("md5") != out.md5:
                problems.append(
                    f"{stage}: dvc.lock records {out.path} as {dep.get('md5')}, but stage "
                    f"{out.stage} wrote {out.md5}"
                )
    return problems


def verify_outputs(root: Path, inputs: ReleaseInputs) -> None:
    """Raise unless ``dvc status`` is clean for what ships and dvc.lock agrees with itself."""
    problems = status_problems(dvc_status(root), inputs)
    lock = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))
    problems += lock_problems(lock, inputs.lock_outs)
    if problems:
        shipped = " ".join(sorted(inputs.outs))
        raise ReleaseError(
            "what would ship is not what dvc.lock records (`dvc status`):\n  "
            + "\n  ".join(problems)
            + "\nRun `dvc repro` and commit dvc.lock (after `dvc pull` if outputs are missing; "
            f"the release job pulls only {shipped}). Run `dvc commit` instead if you changed "
            "outputs on purpose."
        )


# --------------------------------------------------------------------------- overlays


_IMAGES_BLOCK = re.compile(r"^images:[ \t]*(?:#.*)?\n((?:(?:[ \t]+.*|[ \t]*)\n)*)", re.MULTILINE)
_NEW_TAG = re.compile(
    r"^(?P<lead>[ \t]+(?:-[ \t]+)?newTag:[ \t]*)(?P<value>\"[^\"]*\"|'[^']*'|"
    r"[^\s#]+)(?P<rest>.*)$",
    re.MULTILINE,
)


def overlay_images(root: Path, variant: Variant, rev: str | None = None) -> list[dict[str, Any]]:
    """The ``images:`` entries of a variant's overlay (working tree, or commit ``rev``)."""
    tree = Tree(root, rev)
    doc = _load_yaml(tree, OVERLAYS[variant], "the deploy overlays name the released image")
    return list((doc or {}).get("images") or [])


def overlay_tag(root: Path, overlay: str, rev: str | None = None) -> str | None:
    """The one ``newTag`` an overlay names (None when it has not exactly one images entry)."""
    doc = _load_yaml(Tree(root, rev), overlay, "the deploy overlays name the released image")
    images = (doc or {}).get("images") or []
    return str(images[0].get("newTag")) if len(images) == 1 and "newTag" in images[0] else None


def committed_tag(root: Path, rev: str | None = None) -> str:
    """The ``newTag`` the production overlay names."""
    tag = overlay_tag(root, TAG_OVERLAY, rev)
    if tag is None:
        raise ReleaseError(
            f"{TAG_OVERLAY} must have exactly one `images:` entry with a `newTag` (the release tag)"
        )
    return tag


def image_repository(root: Path, variant: Variant, rev: str | None = None) -> str:
    """The registry repository of a variant: production's ``newName``, renamed by production-gpu."""
    images = overlay_images(root, "cpu", rev)
    if len(images) != 1 or not images[0].get("newName"):
        raise ReleaseError(
            f"{TAG_OVERLAY} must have exactly one `images:` entry with a "
            "`newName` (the image repository)"
        )
    repository = str(images[0]["newName"])
    if variant == "gpu":
        renames = [e for e in overlay_images(root, "gpu", rev) if e.get("name") == repository]
        if len(renames) != 1 or not renames[0].get("newName"):
            raise ReleaseError(
                f"{OVERLAYS['gpu']} must rename {repository} to the GPU image with one "
                f"`images:` entry (name: {repository}, newName: <gpu repository>)"
            )
        repository = str(renames[0]["newName"])
    return repository


def set_overlay_tag(path: Path, tag: str) -> bool:
    """Rewrite the one ``newTag`` of the ``images:`` block in ``path``; True if it changed.

    Only that value changes: comments, quoting and every other line are kept byte for byte.
    """
    if not _OCI_TAG.fullmatch(tag):
        raise ReleaseError(f"{tag!r} is not a valid image tag")
    if not path.is_file():
        raise ReleaseError(f"{path} not found: restore it from git (`git checkout -- {path}`)")
    text = path.read_text(encoding="utf-8")
    blocks = list(_IMAGES_BLOCK.finditer(text))
    tags = [m for b in blocks for m in _NEW_TAG.finditer(text, b.start(1), b.end(1))]
    if len(blocks) != 1 or len(tags) != 1:
        raise ReleaseError(
            f"{path} must have one top-level `images:` block with exactly one "
            f"`newTag:` line (found {len(blocks)} block(s), {len(tags)} newTag)"
        )
    match = tags[0]
    quote = '"' if match["value"].startswith('"') or not match["value"].startswith("'") else "'"
    new = f"{match['lead']}{quote}{tag}{quote}{match['rest']}"
    updated = text[: match.start()] + new + text[match.end() :]
    if updated == text:
        return False
    from textclf import io

    io.write_text(path, updated)
    return True


# --------------------------------------------------------------------------- registry


Fetch = Callable[[urllib.request.Request], tuple[int, Mapping[str, str], bytes]]
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def _urlopen(request: urllib.request.Request) -> tuple[int, Mapping[str, str], bytes]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers.items()), err.read()
    except (urllib.error.URLError, OSError) as err:
        raise ReleaseError(f"cannot reach {request.full_url}: {err}") from err


@dataclass(frozen=True)
class ImageRef:
    """``registry/repository:tag``."""

    registry: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        """Parse ``host[:port]/path:tag``; Docker Hub names get ``registry-1.docker.io``."""
        if "@" in ref:
            raise ReleaseError(f"{ref!r}: give a tag, not a digest")
        name, sep, tag = ref.rpartition(":")
        if not sep or "/" in tag or not _OCI_TAG.fullmatch(tag):
            raise ReleaseError(f"{ref!r} has no valid tag: expected <registry>/<name>:<tag>")
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return cls(first, rest, tag)
        repository = name if "/" in name else f"library/{name}"
        return cls("registry-1.docker.io", repository, tag)

    @property
    def base_url(self) -> str:
        host = self.registry.rsplit(":", 1)[0] if not self.registry.startswith("[") else ""
        local = host in {"localhost", "127.0.0.1"} or self.registry.startswith("[::1]")
        return f"{'http' if local else 'https'}://{self.registry}"


def _challenge(headers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    value = next((v for k, v in headers.items() if k.lower() == "www-authenticate"), "")
    scheme, _, params = value.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


def image_exists(
    ref: str,
    *,
    username: str | None = None,
    password: str | None = None,
    fetch: Fetch = _urlopen,
) -> bool:
    """Whether ``ref`` has a manifest in its registry (Docker Registry HTTP API v2).

    Anonymous first; on a 401 challenge, a bearer token from the challenge's realm (with basic
    credentials when given, as ``docker login`` does) or basic auth. 200 means it exists, 404
    that it does not; anything else is an error, never a guess.
    """
    image = ImageRef.parse(ref)
    url = f"{image.base_url}/v2/{image.repository}/manifests/{image.tag}"
    basic = None
    if username and password:
        basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def head(authorization: str | None) -> tuple[int, Mapping[str, str], bytes]:
        request = urllib.request.Request(url, method="HEAD", headers={"Accept": MANIFEST_TYPES})
        if authorization:
            request.add_header("Authorization", authorization)
        return fetch(request)

    status, headers, _ = head(None)
    if status == 401:
        scheme, params = _challenge(headers)
        if scheme == "bearer" and params.get("realm"):
            query = {k: v for k, v in params.items() if k in {"service", "scope"}}
            query.setdefault("scope", f"repository:{image.repository}:pull")
            token_url = f"{params['realm']}?{urllib.parse.urlencode(query)}"
            token_request = urllib.request.Request(token_url)
            if basic:
                token_request.add_header("Authorization", basic)
            t_status, _, body = fetch(token_request)
            if t_status != 200:
                raise ReleaseError(
                    f"{image.registry} refused a pull token for {image.repository} (HTTP "
                    f"{t_status}): set {REGISTRY_USER_ENV}/{REGISTRY_PASSWORD_ENV} to credentials "
                    "that may read it"
                )
            payload = json.loads(body or b"{}")
            token = payload.get("token") or payload.get("access_token")
            if not token:
                raise ReleaseError(f"{token_url} returned no token")
            status, headers, _ = head(f"Bearer {token}")
        elif scheme == "basic" and basic:
            status, headers, _ = head(basic)
    if status == 200:
        return True
    if status == 404:
        return False
    raise ReleaseError(
        f"cannot tell whether {ref} exists: HEAD {url} answered HTTP {status}"
        + (
            f" (set {REGISTRY_USER_ENV} and {REGISTRY_PASSWORD_ENV})"
            if status in (401, 403)
            else ""
        )
    )


# --------------------------------------------------------------------------- commands


def compute(root: Path, rev: str | None = None, *, verify: bool = True) -> ReleaseInputs:
    """The release inputs of ``root`` (or of commit ``rev``); with ``verify``, dvc status first."""
    inputs = release_inputs(Tree(root, rev))
    if verify and rev is None:
        verify_outputs(root, inputs)
    return inputs


def check(root: Path, rev: str | None = None) -> str:
    """Raise unless the overlays name the computed tag (and, without ``rev``, dvc status is clean).

    With ``rev`` everything is read from that commit (git only, no ``dvc status``): what is
    committed, whatever a retrain rewrote in the workspace.
    """
    tag = compute(root, rev).tag
    named = {TAG_OVERLAY: committed_tag(root, rev)}
    if Tree(root, rev).read(STAGING_OVERLAY) is not None:
        named[STAGING_OVERLAY] = overlay_tag(root, STAGING_OVERLAY, rev) or ""
    for overlay, value in named.items():
        if value != tag:
            raise ReleaseError(
                f"{overlay} names image tag {value!r}, but dvc.lock and the serving code give "
                f"{tag!r}: run `make release-manifests` (`textclf release manifests`) and "
                f"commit {overlay} with the model change"
            )
    return tag


release_app = typer.Typer(
    help="Release tag from committed content, the manifests that name it, and image checks.\n\n"
    "The tag is m-<12 hex>: a hash of the dvc.lock md5s of the outputs the bento ships and of "
    "the git files it ships (src/textclf, params.yaml, bentofiles). See `textclf release tag "
    "--explain`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

release_app.command("verify")(verify_cmd)

RootOpt = Annotated[Path, typer.Option("--root", help="repository root.")]
NoStatusOpt = Annotated[
    bool,
    typer.Option(
        "--no-status", help="skip the `dvc status` check (the tag then only describes dvc.lock)."
    ),
]
VariantOpt = Annotated[
    str,
    typer.Option(
        "--variant", help="image variant: cpu (bentofile.yaml) or gpu (bentofile.gpu.yaml)."
    ),
]


def _variant(value: str) -> Variant:
    if value not in BENTOFILES:
        fail(ReleaseError(f"--variant {value!r}: choose one of {', '.join(BENTOFILES)}"))
    return "gpu" if value == "gpu" else "cpu"


def _note_uncommitted(root: Path, inputs: ReleaseInputs) -> None:
    paths = [*inputs.files, "dvc.lock"]
    dirty = uncommitted(root, paths)
    if dirty:
        typer.secho(
            f"note: the tag covers uncommitted changes to {', '.join(dirty)}; commit them "
            f"together with {TAG_OVERLAY}",
            fg=typer.colors.YELLOW,
            err=True,
        )


@release_app.command("tag")
def tag_cmd(
    root: RootOpt = Path(),
    rev: Annotated[
        str | None,
        typer.Option(
            "--rev", help="compute the tag of this commit (reads git only; no dvc status)."
        ),
    ] = None,
    explain: Annotated[
        bool,
        typer.Option("--explain", help="print the hashed manifest (one line per output and file)."),
    ] = False,
    no_status: NoStatusOpt = False,
) -> None:
    """Print the image tag computed from dvc.lock, the serving code and the bentofiles.

    Without --rev it reads the working tree and first checks `dvc status` (exit 2 if the
    shipped outputs are stale or missing). Same content, same tag; a revert gives the old tag.
    """
    try:
        inputs = compute(root, rev, verify=not no_status)
        if rev is None:
            _note_uncommitted(root, inputs)
    except ReleaseError as err:
        fail(err)
    if explain:
        typer.echo(inputs.manifest(), nl=False)
    typer.echo(inputs.tag)


@release_app.command("outputs")
def outputs_cmd(root: RootOpt = Path()) -> None:
    """Print the DVC outputs the bentos ship, one per line (for `dvc pull $(...)`)."""
    try:
        inputs = compute(root, verify=False)
    except ReleaseError as err:
        fail(err)
    typer.echo("\n".join(sorted(inputs.outs)))


@release_app.command("image")
def image_cmd(
    root: RootOpt = Path(), variant: VariantOpt = "cpu", no_status: NoStatusOpt = False
) -> None:
    """Print the image reference of a variant: <overlay newName>:<computed tag>."""
    try:
        kind = _variant(variant)
        repository = image_repository(root, kind)
        tag = compute(root, verify=not no_status).tag
    except ReleaseError as err:
        fail(err)
    typer.echo(f"{repository}:{tag}")


@release_app.command("manifests")
def manifests_cmd(root: RootOpt = Path(), no_status: NoStatusOpt = False) -> None:
    """Write the computed tag into the production and staging overlays (commit with dvc.lock)."""
    try:
        inputs = compute(root, verify=not no_status)
        overlays = [
            o for o in (TAG_OVERLAY, STAGING_OVERLAY) if o == TAG_OVERLAY or (root / o).is_file()
        ]
        changed = {o: set_overlay_tag(root / o, inputs.tag) for o in overlays}
        _note_uncommitted(root, inputs)
    except ReleaseError as err:
        fail(err)
    for overlay, wrote in changed.items():
        if wrote:
            typer.echo(f"wrote newTag {inputs.tag} to {overlay}: commit it")
        else:
            typer.echo(f"{overlay} already names {inputs.tag}")


@release_app.command("check")
def check_cmd(
    root: RootOpt = Path(),
    rev: Annotated[
        str | None,
        typer.Option(
            "--rev",
            help="check this commit instead of the working tree (git only, no dvc status): "
            "its dvc.lock, serving files and overlays.",
        ),
    ] = None,
) -> None:
    """Fail (exit 2) unless outputs match dvc.lock and both overlays name the computed tag."""
    try:
        tag = check(root, rev)
    except ReleaseError as err:
        fail(err)
    if rev:
        typer.echo(f"release {tag}: commit {rev} names it in {TAG_OVERLAY}")
    else:
        typer.echo(f"release {tag}: dvc status clean, {TAG_OVERLAY} names it")


@release_app.command("exists")
def exists_cmd(
    root: RootOpt = Path(),
    variant: VariantOpt = "cpu",
    image: Annotated[
        str | None,
        typer.Option("--image", help="check this reference instead of the variant's computed one."),
    ] = None,
    no_status: NoStatusOpt = False,
) -> None:
    """Exit 0 if the release image is already in its registry, 1 if it must be built, 2 on error.

    Queries the registry's HTTP API (anonymous, or with $TEXTCLF_REGISTRY_USERNAME and
    $TEXTCLF_REGISTRY_PASSWORD, e.g. github.actor and GITHUB_TOKEN for ghcr.io).
    """
    try:
        if image is None:
            kind = _variant(variant)
            image = f"{image_repository(root, kind)}:{compute(root, verify=not no_status).tag}"
        found = image_exists(
            image,
            username=os.environ.get(REGISTRY_USER_ENV),
            password=os.environ.get(REGISTRY_PASSWORD_ENV),
        )
    except ReleaseError as err:
        fail(err)
    typer.echo(f"{image}: {'exists, nothing to build' if found else 'missing, build it'}")
    raise typer.Exit(code=0 if found else 1)
