"""What an image really ships: its files, read from the OCI layers, against dvc.lock and git.

The review builds images in a job that runs pull-request code; the job that pushes them and the
release on main run only the base branch's code, and before pushing or releasing they open the
image (an OCI archive: ``podman save --format oci-archive``, ``skopeo copy ... oci-archive:``)
and re-hash every file its definition ships: each model file against the md5 that dvc.lock names
(through the re-hashed ``.dir`` listing in the DVC cache), each source file against the commit's
bytes. So an image built by a modified build script, or a layer that rewrote the model after the
copy, is refused, naming the file.

Layers are applied in order, as a container runtime would: a later layer's file replaces an
earlier one, and a whiteout (``.wh.<name>``, ``.wh..wh..opq``) deletes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from textclf.errors import ReleaseError
from textclf.release.git import Tree
from textclf.release.tag import IMAGES, VARIANTS, compute, read_definition
from textclf.release.verify import cache_dir, verified_listing

#: Where a definition's ``include`` paths land inside the image.
BENTO_ROOT = "home/bentoml/bento/src"
_CHUNK = 1 << 20


def _blob(tar: tarfile.TarFile, digest: str) -> IO[bytes]:
    algorithm, _, value = digest.partition(":")
    member = tar.extractfile(f"blobs/{algorithm}/{value}")
    if member is None:
        raise ReleaseError(f"the archive has no blob {digest}")
    return member


def _json(tar: tarfile.TarFile, digest: str) -> Any:
    return json.loads(_blob(tar, digest).read())


def _layers(archive: Path) -> Iterator[tarfile.TarFile]:
    """The image's layers, in order, as tar files."""
    with tarfile.open(archive) as outer:
        index = json.load(outer.extractfile("index.json") or io.BytesIO(b"{}"))
        manifests = index.get("manifests") or []
        if len(manifests) != 1:
            raise ReleaseError(f"{archive} must hold exactly one image manifest")
        manifest = _json(outer, manifests[0]["digest"])
        for layer in manifest.get("layers") or []:
            raw = _blob(outer, layer["digest"])
            stream = cast(
                IO[bytes], gzip.GzipFile(fileobj=raw) if "gzip" in layer["mediaType"] else raw
            )
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                yield tar


def _hashes(member: IO[bytes]) -> tuple[str, str]:
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    while chunk := member.read(_CHUNK):
        md5.update(chunk)
        sha256.update(chunk)
    return md5.hexdigest(), sha256.hexdigest()


def image_files(archive: Path, prefix: str) -> dict[str, tuple[str, str]]:
    """``path under prefix -> (md5, sha256)`` of every regular file the image holds there."""
    prefix = prefix.strip("/") + "/"
    files: dict[str, tuple[str, str]] = {}
    for layer in _layers(archive):
        for member in layer:
            name = member.name.lstrip("./")
            base = posixpath.basename(name)
            parent = posixpath.dirname(name)
            if base == ".wh..wh..opq":
                gone = parent + "/" if parent else ""
                files = {k: v for k, v in files.items() if not (prefix + k).startswith(gone)}
                continue
            if base.startswith(".wh."):
                deleted = posixpath.join(parent, base[4:])
                files = {
                    k: v
                    for k, v in files.items()
                    if prefix + k != deleted and not (prefix + k).startswith(deleted + "/")
                }
                continue
            if not name.startswith(prefix):
                continue
            rel = name[len(prefix) :]
            if member.isfile():
                handle = layer.extractfile(member)
                if handle is not None:
                    files[rel] = _hashes(handle)
            elif member.islnk():
                target = member.linkname.lstrip("./")
                if target.startswith(prefix) and target[len(prefix) :] in files:
                    files[rel] = files[target[len(prefix) :]]
            else:
                files.pop(rel, None)  # a directory, symlink or device replaces a file
    return files


@dataclass(frozen=True)
class Checked:
    """What :func:`verify_archive` compared."""

    files: int
    model_files: int


def image_root(definition: str) -> str:
    """Where a definition's include paths land in its image."""
    return BENTO_ROOT if definition.startswith("bentofile") else "app"


def verify_archive(  # noqa: C901, PLR0912  one branch per way an archive can be wrong, each with its own message
    root: Path,
    variant: str,
    archive: Path,
    rev: str | None = None,
    cache: Path | None = None,
) -> Checked:
    """Raise unless ``archive`` holds exactly the bytes ``variant``'s definition ships.

    Model files are compared with the md5s of dvc.lock (their listing re-hashed from ``cache``,
    default the repository's DVC cache); source files with the sha256 of the commit's (or the
    working tree's) bytes.
    """
    key = VARIANTS[variant]
    tree = Tree(root, rev)
    definition_path = IMAGES[key].variants[variant]
    definition = read_definition(tree, definition_path)
    inputs = compute(root, rev, image=key, verify=False)
    cache = cache or cache_dir(root)
    expected: dict[str, tuple[str, str]] = {}  # path -> (kind, hex)
    shipped_patterns = [p.lstrip("/") for p in definition.include]
    for out in inputs.outs.values():
        listing = verified_listing(out, cache)
        for rel, md5 in listing.items():
            path = posixpath.join(out.path, rel) if rel else out.path
            if path in shipped_patterns or out.path in shipped_patterns:
                expected[path] = ("md5", md5)
    build_files = set(IMAGES[key].definitions)
    for other in IMAGES[key].definitions:
        if tree.read(other) is not None:
            build_files |= set(read_definition(tree, other).build_files)
    for path, sha256 in inputs.files.items():
        if path not in build_files:
            expected[path] = ("sha256", sha256)
    prefix = image_root(definition_path)
    actual = image_files(archive, prefix)

    def in_image(path: str) -> str:
        return path.removeprefix("src/") if prefix == BENTO_ROOT else path

    problems = []
    # Nothing else may sit in the package or beside the model (byte-compiled caches aside).
    guarded = (in_image("src/textclf/"), "artifacts/")
    for extra in sorted(set(actual) - {in_image(p) for p in expected}):
        if extra.startswith(guarded) and "__pycache__/" not in extra:
            problems.append(f"/{prefix}/{extra}: in the image but not in {definition_path}")
    for path, (kind, wanted) in sorted(expected.items()):
        found = actual.get(in_image(path))
        if found is None:
            problems.append(
                f"{path}: missing from the image (expected at /{prefix}/{in_image(path)})"
            )
            continue
        got = found[0] if kind == "md5" else found[1]
        if got != wanted:
            source = "dvc.lock" if kind == "md5" else tree.where
            problems.append(f"{path}: the image has {kind} {got}, {source} says {wanted}")
    if problems:
        raise ReleaseError(
            f"{archive} does not ship what {definition_path} and dvc.lock name "
            f"({len(problems)} file(s)); push and release nothing built from it:\n  - "
            + "\n  - ".join(problems)
        )
    model = sum(1 for kind, _ in expected.values() if kind == "md5")
    return Checked(files=len(expected), model_files=model)
