"""``textclf snapshot import``: a traffic snapshot into the DVC-tracked ``traffic/`` directory.

The source is one of

- a snapshot directory (``manifest.json`` + ``traffic.jsonl``, :mod:`textclf.monitoring.snapshot`),
- a storage prefix holding snapshots ``<UTC stamp>/`` (the drift CronJob's ``--snapshot-to``):
  the latest complete one, or the one ``--snapshot`` names; a URL (``s3://...``, ``gs://...``,
  ``file://...``) is read with fsspec and the filesystem package for its scheme (s3fs, gcsfs),
- a traffic-log directory (``TEXTCLF_TRAFFIC_DIR``): its window (``--since``) is snapshotted here.

The snapshot is verified against its manifest, replaces ``traffic/`` (atomically), is tracked
with ``dvc add traffic`` (its own ``traffic.dvc``: ``data/`` is one DVC output, and DVC forbids
overlapping ones), and the pointer is committed; ``dvc push`` sends the data to the remote. The
texts go to the DVC remote, never to git.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textclf import io
from textclf.dvccmd import run_dvc
from textclf.errors import DataError, TextclfError
from textclf.gitcmd import run_git
from textclf.monitoring.drift import traffic_files
from textclf.monitoring.snapshot import (
    MANIFEST_NAME,
    STAMP_FORMAT,
    TRAFFIC_NAME,
    is_snapshot,
    read_manifest,
    write_snapshot,
)

TRAFFIC_DIR = "traffic"


@dataclass(frozen=True)
class Imported:
    """What an import did."""

    source: str
    snapshot: str
    directory: Path
    manifest: dict[str, Any]
    committed: str | None  # the commit that holds the new traffic.dvc
    pushed: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON summary for the command's output."""
        m = self.manifest
        return {
            "source": self.source,
            "snapshot": self.snapshot,
            "directory": str(self.directory),
            "window": {"since": m.get("since"), "until": m.get("until")},
            "requests": m.get("requests"),
            "labelled": m.get("labelled"),
            "with_text": m.get("with_text"),
            "committed": self.committed,
            "pushed": self.pushed,
        }


def _is_url(source: str) -> bool:
    return "://" in source


def _latest(names: list[str], source: str, wanted: str | None) -> str:
    stamps = sorted(n for n in names if _is_stamp(n))
    if wanted is not None:
        if wanted not in stamps:
            raise DataError(
                f"{source} has no complete snapshot {wanted!r} (complete ones: "
                f"{', '.join(stamps[-5:]) or 'none'}). Fix: pass one of them to --snapshot."
            )
        return wanted
    if not stamps:
        raise DataError(
            f"{source} holds no complete snapshot (<UTC stamp>/ with {MANIFEST_NAME}), no "
            "traffic logs (*.jsonl). Fix: pass the drift CronJob's --snapshot-to prefix, one "
            "snapshot, or a traffic-log directory."
        )
    return stamps[-1]


def _is_stamp(name: str) -> bool:
    try:
        datetime.strptime(name, STAMP_FORMAT)
    except ValueError:
        return False
    return True


def _fetch_url(source: str, wanted: str | None, work: Path) -> tuple[Path, str]:
    """Download one snapshot from a storage URL into ``work``; its local path and name."""
    try:
        import fsspec
    except ImportError:  # pragma: no cover - dvc depends on fsspec
        raise TextclfError("fsspec is not installed. Fix: pip install fsspec.") from None
    try:
        fs, root = fsspec.core.url_to_fs(source)
    except (ImportError, ValueError) as err:
        raise DataError(
            f"cannot read {source} ({err}). Fix: install the filesystem package for its "
            "scheme (e.g. s3fs for s3://, gcsfs for gs://) and its credentials."
        ) from None
    root = root.rstrip("/")
    if fs.isfile(f"{root}/{MANIFEST_NAME}"):
        remote, name = root, root.rsplit("/", 1)[-1]
    else:
        children = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)]
        complete = [c for c in children if fs.isfile(f"{root}/{c}/{MANIFEST_NAME}")]
        name = _latest(complete, source, wanted)
        remote = f"{root}/{name}"
    local = work / name
    local.mkdir(parents=True)
    for file_name in (TRAFFIC_NAME, MANIFEST_NAME):
        fs.get(f"{remote}/{file_name}", str(local / file_name))
    return local, name


def locate(
    source: str, work: Path, *, wanted: str | None = None, since: datetime | None = None
) -> tuple[Path, str]:
    """The local snapshot directory for ``source`` (made in ``work`` when it must be) and its
    name; raises :class:`DataError` naming the source and the fix."""
    if _is_url(source):
        return _fetch_url(source, wanted, work)
    path = Path(source)
    if not path.is_dir():
        raise DataError(f"{source} is not a directory. Fix: pass a snapshot, a prefix or a URL.")
    if is_snapshot(path):
        return path, path.name
    if traffic_files(path):
        name = datetime.now(UTC).strftime(STAMP_FORMAT)
        return write_snapshot(path, work / name, since=since), name
    complete = [p.name for p in path.iterdir() if p.is_dir() and is_snapshot(p)]
    name = _latest(complete, source, wanted)
    return path / name, name


def _dvc(root: Path, args: list[str], why: str) -> None:
    result = run_dvc(root, *args)
    if result.returncode != 0:
        raise TextclfError(
            f"`dvc {' '.join(args)}` failed ({why}): "
            f"{(result.stderr or result.stdout).strip()[-800:]}"
        )


def import_snapshot(
    root: Path,
    source: str,
    *,
    wanted: str | None = None,
    since: datetime | None = None,
    commit: bool = True,
    push: bool = True,
) -> Imported:
    """Import ``source`` as ``root/traffic`` (see the module doc); what was done."""
    root = Path(root)
    target = root / TRAFFIC_DIR
    with tempfile.TemporaryDirectory(prefix="textclf-snapshot-") as tmp:
        snapshot, name = locate(source, Path(tmp), wanted=wanted, since=since)
        manifest = read_manifest(snapshot)
        with io.atomic_dir(target) as staged:
            for file_name in (TRAFFIC_NAME, MANIFEST_NAME):
                shutil.copyfile(snapshot / file_name, staged / file_name)
        read_manifest(target)  # the copy, too
    _dvc(root, ["add", TRAFFIC_DIR], "tracking the snapshot with DVC")
    committed = None
    if commit:
        message = (
            f"traffic: snapshot {name} ({manifest['requests']} requests, "
            f"{manifest['labelled']} labelled)"
        )
        pointer = (f"{TRAFFIC_DIR}.dvc", ".gitignore")
        run = run_git(root, "add", "--", *pointer, why="committing")
        unchanged = (
            run.returncode == 0
            and (
                run_git(
                    root, "diff", "--cached", "--quiet", "HEAD", "--", *pointer, why="committing"
                )
            ).returncode
            == 0
        )  # the same snapshot again (e.g. a rerun after a failed push)
        if run.returncode == 0 and not unchanged:
            run = run_git(
                root, "commit", "-q", "-m", message, "--", *pointer,
                why="committing the snapshot's pointer",
            )  # fmt: skip
        if run.returncode != 0:
            said = (run.stderr or run.stdout).decode(errors="replace").strip()[-800:]
            raise TextclfError(
                f"committing {TRAFFIC_DIR}.dvc failed: {said} Fix: commit it yourself "
                "(`git commit traffic.dvc .gitignore`)."
            )
        head = run_git(root, "rev-parse", "HEAD", why="naming the commit")
        committed = head.stdout.decode().strip()
    if push:
        _dvc(root, ["push", f"{TRAFFIC_DIR}.dvc"], "sending the snapshot to the DVC remote")
    return Imported(source, name, target, manifest, committed, push)
