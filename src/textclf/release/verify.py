"""``textclf release verify``: re-hash every byte of the DVC outputs against ``dvc.lock``.

What it proves: each output that ``dvc.lock`` records (and, when asked, each output of a
``*.dvc`` file such as ``data.dvc``) is present in the local DVC cache with exactly the bytes
that ``dvc.lock`` names, and, with the workspace check, that the files under the output path are
exactly those bytes: no file edited, missing or added. The promotion job runs it after
``dvc fetch -r review`` and before ``dvc push -r release``; the release job runs it again after
pulling from the release remote, so no byte reaches the image that ``dvc.lock`` does not name.

Why DVC alone does not: ``dvc pull`` trusts object names and does not re-hash. With a remote's
``verify = true``, ``dvc fetch`` re-hashes what it downloads, but it drops a corrupt object with a
debug-level log line and exits 0, and an object already in the local cache (e.g. a restored CI
cache) is never re-hashed; ``dvc status`` then reports the tampered workspace as up to date.

How (DVC 3 only): the cache is content-addressed, ``<cache>/files/md5/<2 hex>/<30 hex>``, the md5
of the raw bytes. A directory output's md5 ends in ``.dir``: its object is a JSON list of
``{"relpath", "md5"}`` entries, itself named by the md5 of its bytes. Each object is read in
chunks and hashed; the listing is parsed only once its own md5 matches, and its relpaths must be
relative, without ``..``. Outputs that DVC 2 recorded (no ``hash: md5`` in the entry) are hashed
differently and refused with the command that rewrites them. Outputs with ``cache: false`` or
``push: false`` in ``dvc.yaml`` are not on any remote and are skipped (git holds the former).
Files that ``.dvcignore`` hides from DVC still count as extra files, since the bento would ship
them. Only the root ``dvc.yaml``/``dvc.lock`` are read; stage ``wdir`` is not supported.

md5 is what DVC 3 records, so this detects corrupted or substituted bytes, but not a pair of
files crafted to collide: the review of ``dvc.lock`` remains the root of trust.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from textclf.console import fail
from textclf.errors import ReleaseError
from textclf.release.git import Tree, load_yaml
from textclf.release.lock import LockOut, lock_outputs

#: Bytes read per ``read`` while hashing: outputs are hundreds of MB.
CHUNK = 1 << 20
_MD5 = re.compile(r"[0-9a-f]{32}")
_DRIVE = re.compile(r"[A-Za-z]:")


# --------------------------------------------------------------------------- hashing


def md5_file(path: Path) -> tuple[str, int]:
    """The md5 hex digest and size of the file at ``path``, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)  # DVC's address; FIPS builds allow it so
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def object_path(cache: Path, md5: str) -> Path:
    """Where DVC 3 keeps the object ``md5`` (``<hex>`` or ``<hex>.dir``) in ``cache``."""
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def bad_relpath(relpath: str) -> bool:
    """Whether ``relpath`` is empty, absolute or leaves its directory (``..``, ``.``, ``//``)."""
    if not relpath or relpath.startswith(("/", "\\")) or _DRIVE.match(relpath) or "\0" in relpath:
        return True
    return any(part in ("", ".", "..") for part in re.split(r"[/\\]", relpath))


# --------------------------------------------------------------------------- configuration


def _dvc_config(root: Path) -> dict[str, Any]:
    """``.dvc/config`` overlaid with ``.dvc/config.local`` (section -> key -> value)."""
    from configobj import ConfigObj, ConfigObjError

    merged: dict[str, Any] = {}
    for name in ("config", "config.local"):
        path = root / ".dvc" / name
        if not path.is_file():
            continue
        try:
            parsed = ConfigObj(str(path))
        except ConfigObjError as err:
            raise ReleaseError(f"{path} is not a valid DVC config: {err}") from err
        for section, values in parsed.items():
            if isinstance(values, dict):
                merged.setdefault(section, {}).update(values)
    return merged


def cache_dir(root: Path) -> Path:
    """The repository's DVC cache: ``cache.dir`` of .dvc/config(.local), else .dvc/cache."""
    configured = _dvc_config(root).get("cache", {}).get("dir")
    if not configured:
        return root / ".dvc" / "cache"
    # DVC stores a relative cache.dir relative to the config file's folder.
    return Path(os.path.normpath(root / ".dvc" / Path(str(configured)).expanduser()))


def default_remote(root: Path) -> str | None:
    """``core.remote`` of the repository's DVC config, if set."""
    remote = _dvc_config(root).get("core", {}).get("remote")
    return str(remote) if remote else None


# --------------------------------------------------------------------------- what to verify


@dataclass(frozen=True)
class Verified:
    """What was re-hashed: output paths, files (objects) inside them, and their bytes."""

    outputs: tuple[str, ...]
    files: int
    bytes: int
    workspace: bool
    #: Outputs not on any remote (``cache: false`` / ``push: false`` in dvc.yaml).
    skipped: tuple[str, ...] = ()

    def summary(self) -> str:
        """``verified N outputs, M files, X MB against dvc.lock``."""
        return (
            f"verified {len(self.outputs)} outputs, {self.files} files, "
            f"{self.bytes / 1e6:.1f} MB against dvc.lock"
        )


@dataclass(frozen=True)
class _Catalog:
    """Outputs of dvc.lock and of the *.dvc files, with what each entry says about hashing."""

    lock: dict[str, LockOut]
    dvcfiles: dict[str, list[LockOut]]
    legacy: set[str]
    not_remote: dict[str, str]


def _parse(tree: Tree, path: str, hint: str) -> Any:
    return load_yaml(tree, path, hint)


def _not_remote(options: Any) -> str | None:
    """``cache: false`` or ``push: false`` when an output's options keep it off the remotes."""
    if isinstance(options, dict):
        for flag in ("cache", "push"):
            if options.get(flag) is False:
                return f"{flag}: false"
    return None


def _out_flags(dvc_yaml: Any) -> dict[tuple[str, str], str]:
    """(stage, path) of the dvc.yaml outputs that are on no remote, with the reason."""
    stages = dvc_yaml.get("stages") if isinstance(dvc_yaml, dict) else None
    flags: dict[tuple[str, str], str] = {}
    for stage, entry in (stages or {}).items():
        if not isinstance(entry, dict):
            continue
        for key in ("outs", "metrics", "plots"):
            for item in entry.get(key) or []:
                for path, options in item.items() if isinstance(item, dict) else []:
                    if reason := _not_remote(options):
                        flags[(str(stage), str(path).rstrip("/"))] = reason
    return flags


def _legacy_entries(entries: dict[str, Any], prefix: str = "") -> set[str]:
    """Paths of the outputs in ``{stage: {outs: [...]}}`` recorded without ``hash: md5``."""
    return {
        prefix + str(out.get("path", "")).rstrip("/")
        for entry in entries.values()
        for out in (entry or {}).get("outs") or []
        if isinstance(out, dict) and out.get("hash") != "md5"
    }


def _catalog(tree: Tree, dvc_files: bool) -> _Catalog:
    """What dvc.lock (and, with ``dvc_files``, each ``*.dvc`` file) of ``tree`` records."""
    lock = _parse(tree, "dvc.lock", "run `dvc repro` and commit dvc.lock")
    source = f"dvc.lock in {tree.where}"
    outs = lock_outputs(lock, source)
    legacy = _legacy_entries(lock["stages"])
    flags = _out_flags(_parse(tree, "dvc.yaml", "")) if tree.read("dvc.yaml") is not None else {}
    not_remote = {
        path: flags[key]
        for path, out in outs.items()
        if (key := (out.stage.split("@")[0], path)) in flags
    }
    dvcfiles: dict[str, list[LockOut]] = {}
    names = [f for f in tree.files if f.endswith(".dvc") and not f.startswith(".dvc/")]
    for name in names if dvc_files else []:
        spec = _parse(tree, name, "")
        folder = name.rpartition("/")[0]
        prefix = f"{folder}/" if folder else ""
        wrapped = {name: spec if isinstance(spec, dict) else {}}
        found = lock_outputs({"stages": wrapped}, f"{name} in {tree.where}")
        dvcfiles[name] = [
            LockOut(stage=name, path=prefix + o.path, md5=o.md5) for o in found.values()
        ]
        legacy |= _legacy_entries(wrapped, prefix)
        for out in wrapped[name].get("outs") or []:
            if reason := _not_remote(out):
                not_remote[prefix + str(out.get("path", "")).rstrip("/")] = reason
    return _Catalog(lock=outs, dvcfiles=dvcfiles, legacy=legacy, not_remote=not_remote)


def _select(catalog: _Catalog, targets: Sequence[str], dvc_files: bool) -> list[LockOut]:
    """The outputs named by ``targets`` (paths, stages, *.dvc files), or all of them."""
    every = dict(catalog.lock)
    for outs in catalog.dvcfiles.values():
        every.update({o.path: o for o in outs})
    if not targets:
        chosen = list(catalog.lock.values())
        if dvc_files:
            chosen += [o for outs in catalog.dvcfiles.values() for o in outs]
        return [o for o in chosen if o.path not in catalog.not_remote]

    picked: dict[str, LockOut] = {}
    problems: list[str] = []
    for raw in targets:
        target = raw.removeprefix("./").rstrip("/")
        if target in catalog.not_remote:
            problems.append(
                f"{target} has `{catalog.not_remote[target]}` in dvc.yaml (or its .dvc file): it "
                "is on no DVC remote, so there is nothing to verify; drop it from the targets"
            )
            continue
        hits = [
            o
            for o in every.values()
            if target in (o.path, o.stage)
            or o.stage.startswith(f"{target}@")
            or target.startswith(f"{o.path}/")
        ]
        if not hits:
            stages = sorted({o.stage for o in every.values()})
            problems.append(
                f"{raw!r} is no output, stage or .dvc file of dvc.lock: choose outputs from "
                f"{', '.join(sorted(every))} or stages from {', '.join(stages)}"
            )
        picked.update({o.path: o for o in hits})
    if problems:
        raise ReleaseError("cannot verify:\n  - " + "\n  - ".join(problems))
    # A stage or .dvc file target covers only those of its outputs that are on a remote.
    return [o for o in picked.values() if o.path not in catalog.not_remote]


# --------------------------------------------------------------------------- checks


@dataclass
class _Checker:
    """Re-hashes objects and workspace files, collecting every problem with its fix."""

    root: Path
    cache: Path
    remote: str
    problems: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    #: md5s whose cache object is missing or wrong: a checkout would copy those bytes.
    bad: set[str] = field(default_factory=set)
    #: (device, inode, size, mtime) -> (md5, size): a file hashed once, however it is linked.
    _seen: dict[tuple[int, int, int, int], tuple[str, int]] = field(default_factory=dict)

    def digest(self, path: Path) -> tuple[str, int] | None:
        """md5 and size of the regular file (or link to one) at ``path``; None if there is none."""
        try:
            info = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        if key not in self._seen:
            self._seen[key] = md5_file(path)
        return self._seen[key]

    def fetch(self, out: str) -> str:
        return f"`dvc fetch -r {self.remote} {out}`"

    def check_object(self, label: str, out: str, md5: str, source: str) -> int | None:
        """Size of the object ``md5`` if it re-hashes to its name; else record why, return None."""
        obj = object_path(self.cache, md5)
        found = self.digest(obj)
        expected = md5.removesuffix(".dir")
        if found is None:
            self.bad.add(expected)
            self.problems.append(
                f"{label}: cache object {obj} is missing: expected md5 {expected} ({source}), "
                f"actual: none. Fix: run {self.fetch(out)}"
            )
            return None
        actual, size = found
        if actual != expected:
            self.bad.add(expected)
            self.problems.append(
                f"{label}: cache object {obj} is corrupt or tampered: expected md5 {expected} "
                f"({source}), actual md5 {actual}. Fix: delete it (`rm -f {obj}`) and run "
                f"{self.fetch(out)} again; if it comes back wrong, treat remote {self.remote} as "
                "compromised and promote or release nothing from it"
            )
            return None
        return size

    def hostile(self, out: LockOut, why: str) -> None:
        self.problems.append(
            f"{out.path}: directory listing {object_path(self.cache, out.md5)} {why}. Its md5 "
            "matches dvc.lock, so dvc.lock itself records it: review the commit that changed "
            f"dvc.lock, then run `dvc repro` (or `dvc commit -f {out.path}`) to record a sound one"
        )

    def listing(self, out: LockOut) -> dict[str, str] | None:
        """relpath -> md5 of a directory output, from its verified ``.dir`` object."""
        label = f"{out.path}: directory listing"
        if self.check_object(label, out.path, out.md5, "dvc.lock") is None:
            return None
        import json

        try:
            entries = json.loads(object_path(self.cache, out.md5).read_bytes())
        except ValueError as err:
            self.hostile(out, f"is not JSON ({err})")
            return None
        if not isinstance(entries, list):
            self.hostile(out, "is not a JSON list of {relpath, md5} entries")
            return None
        listing: dict[str, str] = {}
        for entry in entries:
            rel = entry.get("relpath") if isinstance(entry, dict) else None
            md5 = entry.get("md5") if isinstance(entry, dict) else None
            if not isinstance(rel, str) or not isinstance(md5, str):
                self.hostile(out, f"has an entry without a string relpath and md5: {entry!r:.80}")
            elif bad_relpath(rel):
                self.hostile(out, f"names {rel!r}, which is absolute or leaves {out.path} (`..`)")
            elif not _MD5.fullmatch(md5):
                self.hostile(out, f"gives {rel} the md5 {md5!r}, which is not 32 hex digits")
            elif rel in listing:
                self.hostile(out, f"names {rel} twice")
            else:
                listing[rel] = md5
        return listing

    def count(self, size: int | None) -> None:
        if size is not None:
            self.files += 1
            self.bytes += size

    def output(self, out: LockOut, workspace: bool) -> None:
        """Check one output's objects and, with ``workspace``, the files under its path."""
        if not out.md5.endswith(".dir"):
            self.count(self.check_object(out.path, out.path, out.md5, "dvc.lock"))
            if workspace:
                self.workspace_file(out)
            return
        listing = self.listing(out)
        if listing is None:
            return
        source = f"listing {out.md5}"
        for rel, md5 in sorted(listing.items()):
            self.count(self.check_object(f"{out.path}: file {rel}", out.path, md5, source))
        if workspace:
            self.workspace_dir(out, listing)

    def _absent(self, out: LockOut) -> bool:
        """Record a missing or wrong-kind workspace output; True if it is not comparable."""
        path = self.root / out.path
        want_dir = out.md5.endswith(".dir")
        if not path.exists():
            self.problems.append(
                f"{out.path}: not in the workspace: expected md5 {out.md5} (dvc.lock), actual: "
                f"none. Fix: run `dvc checkout {out.path}` (after {self.fetch(out.path)} if its "
                "objects are missing), or pass --no-workspace to check the cache only"
            )
            return True
        if path.is_dir() != want_dir:
            kinds = ("directory", "file") if want_dir else ("file", "directory")
            self.problems.append(
                f"{out.path}: dvc.lock records a {kinds[0]} (md5 {out.md5}), the workspace has a "
                f"{kinds[1]}, and it would ship. Fix: run `dvc checkout --force {out.path}`"
            )
            return True
        return False

    def checkout(self, out: LockOut, md5: str) -> str:
        """The fix for a workspace file: checkout, once its cache object is sound."""
        first = "repair its cache object (above), then " if md5 in self.bad else ""
        return f"Fix: {first}run `dvc checkout --force {out.path}`"

    def differs(self, out: LockOut, label: str, expected: str, source: str, actual: str) -> None:
        self.problems.append(
            f"{label}: the workspace file differs: expected md5 {expected} ({source}), "
            f"{actual}, and it would ship as is. {self.checkout(out, expected)}"
        )

    def actual(self, path: Path) -> tuple[str | None, str]:
        """The md5 of a workspace file (None if it is no regular file) and how to show it."""
        found = self.digest(path)
        if found is None:
            return None, "actual: not a regular file"
        return found[0], f"actual md5 {found[0]}"

    def workspace_file(self, out: LockOut) -> None:
        if self._absent(out):
            return
        actual, shown = self.actual(self.root / out.path)
        if actual != out.md5:
            self.differs(out, out.path, out.md5, "dvc.lock", shown)

    def workspace_dir(self, out: LockOut, listing: dict[str, str]) -> None:
        if self._absent(out):
            return
        base = self.root / out.path
        present: dict[str, Path] = {}
        for folder, dirs, names in os.walk(base):
            # Links to directories are not followed: they are extra entries themselves.
            for name in [*names, *(d for d in dirs if Path(folder, d).is_symlink())]:
                full = Path(folder, name)
                present[full.relative_to(base).as_posix()] = full
        source = f"listing {out.md5}"
        for rel in sorted(set(present) | set(listing)):
            label = f"{out.path}: file {rel}"
            if rel not in present:
                self.problems.append(
                    f"{label}: missing from the workspace: expected md5 {listing[rel]} "
                    f"({source}), actual: none. {self.checkout(out, listing[rel])}"
                )
                continue
            actual, shown = self.actual(present[rel])
            if rel not in listing:
                self.problems.append(
                    f"{label}: in the workspace but not in {source} ({shown}), and it "
                    f"would ship. Fix: run `dvc checkout --force {out.path}` (it removes files "
                    "the listing does not name)"
                )
            elif actual != listing[rel]:
                self.differs(out, label, listing[rel], source, shown)


def _unsupported(out: LockOut, legacy: bool) -> str | None:
    """Why ``out`` cannot be verified from its dvc.lock entry, if it cannot."""
    if bad_relpath(out.path):
        return (
            f"{out.path} ({out.stage}): the output path is absolute or leaves the repository "
            "(`..`): review the commit that changed dvc.lock"
        )
    if not _MD5.fullmatch(out.md5.removesuffix(".dir")):
        return (
            f"{out.path} ({out.stage}): md5 {out.md5!r} is not 32 hex digits (with `.dir` for a "
            f"directory): run `dvc commit -f {out.path}` and commit the result"
        )
    if legacy:
        return (
            f"{out.path} ({out.stage}): recorded without `hash: md5`, i.e. by DVC 2, whose "
            "hashes (text files hashed after CRLF->LF conversion, objects outside files/md5/) "
            "this check does not support. Fix: with DVC 3 run `dvc cache migrate --dvc-files` "
            f"or `dvc commit -f {out.path}` (or `dvc repro`), and commit the rewritten file"
        )
    return None


def verify_against_lock(
    root: Path,
    rev: str | None = None,
    *,
    cache: Path | None = None,
    targets: Sequence[str] = (),
    dvc_files: bool = False,
    workspace: bool = True,
    remote: str | None = None,
) -> Verified:
    """Re-hash the DVC outputs of dvc.lock (at ``rev``, else the working tree) in the cache.

    ``targets`` are output paths, stage names or ``*.dvc`` files (default: every output of
    dvc.lock that is on a remote, plus those of the ``*.dvc`` files with ``dvc_files``).
    ``workspace`` also compares the files under each output path. ``remote`` only names the
    remote in the fix lines (default: ``core.remote``). Raises ReleaseError listing every problem.
    """
    root = Path(root)
    if not (root / ".dvc").is_dir():
        raise ReleaseError(f"{root} is not a DVC repository (no .dvc folder): pass --root")
    tree = Tree(root, rev)
    catalog = _catalog(tree, dvc_files or bool(targets))
    selected = sorted(_select(catalog, targets, dvc_files), key=lambda o: o.path)
    if not selected:
        raise ReleaseError(
            f"dvc.lock in {tree.where} records no output that is on a DVC remote: nothing to "
            "verify (run `dvc repro` and commit dvc.lock, or name targets)"
        )
    cache = Path(cache) if cache is not None else cache_dir(root)
    name = remote or default_remote(root) or "<remote>"
    if not cache.is_dir():
        raise ReleaseError(
            f"the DVC cache {cache} does not exist: run `dvc fetch -r {name}` first (or pass "
            "--cache with the cache folder)"
        )
    checker = _Checker(root=root, cache=cache, remote=name)
    for out in selected:
        why = _unsupported(out, out.path in catalog.legacy)
        if why:
            checker.problems.append(why)
        else:
            checker.output(out, workspace)
    if checker.problems:
        count = len(checker.problems)
        raise ReleaseError(
            f"{count} problem{'s' if count > 1 else ''} verifying {len(selected)} DVC outputs "
            f"against dvc.lock in {tree.where} (cache {cache}); promote or release nothing "
            "until every byte matches:\n  - " + "\n  - ".join(checker.problems)
        )
    return Verified(
        outputs=tuple(o.path for o in selected),
        files=checker.files,
        bytes=checker.bytes,
        workspace=workspace,
        skipped=tuple(sorted(catalog.not_remote)),
    )


# --------------------------------------------------------------------------- command


def verify_cache_objects(cache: Path) -> tuple[int, int]:
    """Re-hash every object in a DVC 3 cache against its name; return (objects, bytes).

    ``dvc push --run-cache`` uploads objects that no ``dvc.lock`` entry names (outputs of other
    runs recorded in the run-cache), so a job that pushes a cache it did not write checks all of
    them. Raises :class:`ReleaseError` listing every object whose bytes do not match its name.
    """
    root = cache / "files" / "md5"
    problems: list[str] = []
    count = size = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []:
        name = path.parent.name + path.name
        expected = name.removesuffix(".dir")
        if path.parent.parent != root or not _MD5.fullmatch(expected):
            problems.append(f"{path}: not a DVC 3 object name. Fix: delete it")
            continue
        actual, length = md5_file(path)
        count, size = count + 1, size + length
        if actual != expected:
            problems.append(
                f"{path}: cache object is corrupt or tampered: its name says md5 {expected}, its "
                f"bytes are {actual}. Fix: delete it (`rm -f {path}`) and push nothing from this "
                "cache"
            )
    if problems:
        raise ReleaseError(
            f"{len(problems)} problem(s) in the DVC cache {cache}:\n  - " + "\n  - ".join(problems)
        )
    return count, size


def verify_cmd(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            help="output paths, stage names or .dvc files (e.g. artifacts/onnx export "
            "data.dvc). Default: every output in dvc.lock that is on a DVC remote.",
            show_default=False,
        ),
    ] = None,
    root: Annotated[Path, typer.Option("--root", help="repository root.")] = Path(),
    rev: Annotated[
        str | None,
        typer.Option(
            "--rev",
            help="read dvc.lock (and dvc.yaml, *.dvc) from this commit instead of the working "
            "tree, e.g. the merge commit being released.",
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            help="DVC cache folder. Default: cache.dir of .dvc/config(.local), else .dvc/cache.",
            show_default=False,
        ),
    ] = None,
    workspace: Annotated[
        bool,
        typer.Option(
            "--workspace/--no-workspace",
            help="also require the files under each output path to be exactly the recorded "
            "ones (what the image would ship). Use --no-workspace after `dvc fetch`, before "
            "`dvc push -r release`.",
        ),
    ] = True,
    dvc_files: Annotated[
        bool,
        typer.Option("--dvc-files", help="also verify the outputs of every *.dvc file (data.dvc)."),
    ] = False,
    remote: Annotated[
        str | None,
        typer.Option(
            "--remote",
            "-r",
            help="the remote the objects came from, named in the fixes. Default: core.remote.",
            show_default=False,
        ),
    ] = None,
    all_objects: Annotated[
        bool,
        typer.Option(
            "--all-objects",
            help="also re-hash every object in the cache against its name, including those "
            "only the run-cache names (before `dvc push --run-cache` of a cache you did not "
            "write).",
        ),
    ] = False,
) -> None:
    """Re-hash every byte of the DVC outputs against dvc.lock; exit 2 naming each mismatch.

    `dvc pull` trusts object names: this re-reads each cache object and each file it lists.
    Each problem names the output, the file, the expected and actual md5, and the fix.

    Promote: `dvc fetch -r review`, `textclf release verify --no-workspace -r review`,
    then `dvc push -r release`.

    Release: `dvc pull -r release <outputs>`, then `textclf release verify -r release <outputs>`.
    """
    try:
        result = verify_against_lock(
            root,
            rev,
            cache=cache,
            targets=targets or (),
            dvc_files=dvc_files,
            workspace=workspace,
            remote=remote,
        )
        if all_objects:
            objects, size = verify_cache_objects(cache or cache_dir(root))
    except ReleaseError as err:
        fail(err)
    typer.echo(result.summary())
    if all_objects:
        typer.echo(
            f"verified all {objects} cache objects ({size / 1e6:.1f} MB) against their names"
        )


def verified_listing(out: LockOut, cache: Path, remote: str = "<remote>") -> dict[str, str]:
    """``relpath -> md5`` of a directory output from its re-hashed ``.dir`` object in ``cache``.

    A file output gives ``{"": md5}``. Raises ReleaseError when the object is missing or wrong.
    """
    if not out.md5.endswith(".dir"):
        return {"": out.md5}
    checker = _Checker(root=cache, cache=cache, remote=remote)
    listing = checker.listing(out)
    if checker.problems or listing is None:
        raise ReleaseError("\n  - ".join(["cannot read what dvc.lock names:", *checker.problems]))
    return listing
