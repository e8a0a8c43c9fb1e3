"""``textclf snapshot import``: a snapshot (from a prefix, a URL or a traffic-log directory) into
the DVC-tracked ``traffic/`` of a real git + DVC repository with a local remote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.production.conftest import NOW, feedback_line, traffic_line
from tests.traffic import write_jsonl
from textclf.errors import DataError
from textclf.monitoring.snapshot import (
    MANIFEST_NAME,
    STAMP_FORMAT,
    TRAFFIC_NAME,
    export_snapshot,
    read_manifest,
)
from textclf.production.importer import import_snapshot, locate

TEXTCLF = REPO / ".venv" / "bin" / "textclf"


def run(root: Path, *args: str) -> str:
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def git(root: Path, *args: str) -> str:
    return run(root, "git", *args)


def dvc(root: Path, *args: str) -> str:
    return run(root, sys.executable, "-m", "dvc", *args)


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """git + DVC, committed, its default remote ``../remote`` (beside the repository's copy)."""
    root = tmp_path_factory.mktemp("template") / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    git(root, "config", "commit.gpgsign", "false")
    dvc(root, "init", "-q")
    with (root / ".dvc" / "config").open("a", encoding="utf-8") as fh:
        # Relative to .dvc/: each copy of the repository gets the remote beside it.
        fh.write("[core]\n    remote = local\n['remote \"local\"']\n    url = ../../remote\n")
    (root / "README.md").write_text("# demo\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


@pytest.fixture
def repo(_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(_template, root, symlinks=True)
    (tmp_path / "remote").mkdir()
    return root


@dataclass(frozen=True)
class Prefix:
    path: Path
    older: str
    newer: str


def _traffic(directory: Path, n: int, labelled: int) -> Path:
    rows = [
        traffic_line(f"secret production text {n}-{i}", "positive", ts=NOW - timedelta(minutes=i))
        for i in range(n)
    ]
    write_jsonl(directory / "pod.jsonl", rows)
    write_jsonl(
        directory / "pod.feedback.jsonl",
        [feedback_line(rows[i]["id"], "negative", NOW) for i in range(labelled)],
    )
    return directory


@pytest.fixture
def prefix(tmp_path: Path) -> Prefix:
    """A storage prefix as the CronJob leaves it: two complete snapshots (3 and 5 requests), a
    later one without its manifest (a copy cut short) and an unfinished temporary directory."""
    path = tmp_path / "snapshots"
    older = export_snapshot(_traffic(tmp_path / "t1", 3, 1), path, now=NOW - timedelta(hours=2))
    newer = export_snapshot(_traffic(tmp_path / "t2", 5, 2), path, now=NOW - timedelta(hours=1))
    cut = path / (NOW + timedelta(hours=1)).strftime(STAMP_FORMAT)
    cut.mkdir()
    shutil.copyfile(newer / TRAFFIC_NAME, cut / TRAFFIC_NAME)
    shutil.copytree(newer, path / f".{NOW.strftime(STAMP_FORMAT)}.abc123.tmp")
    return Prefix(path, older.name, newer.name)


def _head_files(repo: Path) -> set[str]:
    return set(git(repo, "show", "--name-only", "--format=", "HEAD").split())


def _assert_imported(repo: Path, snapshot: Path, name: str, requests: int) -> None:
    """traffic/ holds ``snapshot``'s files, tracked by DVC, its pointer alone committed."""
    traffic = repo / "traffic"
    for file_name in (TRAFFIC_NAME, MANIFEST_NAME):
        assert (traffic / file_name).read_bytes() == (snapshot / file_name).read_bytes()
    assert read_manifest(traffic)["requests"] == requests
    pointer = yaml.safe_load((repo / "traffic.dvc").read_text())
    assert pointer["outs"][0]["path"] == "traffic" and pointer["outs"][0]["md5"].endswith(".dir")
    assert _head_files(repo) == {"traffic.dvc", ".gitignore"}
    message = git(repo, "log", "-1", "--format=%s")
    assert name in message and f"{requests} requests" in message
    assert "/traffic" in (repo / ".gitignore").read_text().splitlines()
    assert git(repo, "ls-files", "traffic") == ""  # the texts never go to git
    git(repo, "check-ignore", "-q", "traffic/traffic.jsonl")
    assert "secret production text" not in git(repo, "log", "-p", "--all")
    assert git(repo, "status", "--porcelain", "--", "traffic.dvc", ".gitignore") == ""


def test_a_prefix_imports_its_latest_complete_snapshot_commits_the_pointer_and_pushes(
    repo: Path, prefix: Prefix
) -> None:
    (repo / "notes.txt").write_text("someone else's work in progress\n")
    git(repo, "add", "notes.txt")

    done = import_snapshot(repo, str(prefix.path))

    assert done.snapshot == prefix.newer and done.pushed
    assert done.committed == git(repo, "rev-parse", "HEAD").strip()
    _assert_imported(repo, prefix.path / prefix.newer, prefix.newer, 5)
    assert done.to_json()["requests"] == 5 and done.to_json()["labelled"] == 2
    # The unrelated staged file stays staged, out of the commit.
    assert "notes.txt" not in _head_files(repo)
    assert git(repo, "diff", "--cached", "--name-only").split() == ["notes.txt"]
    # The remote has the data: DVC says so, and the directory object is there.
    status = dvc(repo, "status", "-c", "traffic.dvc")
    assert "in sync" in status or "up to date" in status, status
    md5 = yaml.safe_load((repo / "traffic.dvc").read_text())["outs"][0]["md5"]
    assert (repo.parent / "remote" / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def test_wanted_picks_an_older_snapshot_and_an_unknown_one_lists_the_complete_ones(
    repo: Path, prefix: Prefix
) -> None:
    done = import_snapshot(repo, str(prefix.path), wanted=prefix.older, push=False)
    assert done.snapshot == prefix.older and not done.pushed
    _assert_imported(repo, prefix.path / prefix.older, prefix.older, 3)
    assert not any((repo.parent / "remote").iterdir())  # push=False sent nothing
    head = git(repo, "rev-parse", "HEAD")

    with pytest.raises(DataError) as err:
        import_snapshot(repo, str(prefix.path), wanted="20200101T000000Z", push=False)
    message = str(err.value)
    assert "'20200101T000000Z'" in message and "Fix: " in message
    assert f"{prefix.older}, {prefix.newer}" in message
    cut = (NOW + timedelta(hours=1)).strftime(STAMP_FORMAT)
    assert cut not in message  # the snapshot without manifest is not complete
    # Nothing changed: the earlier import stands.
    assert git(repo, "rev-parse", "HEAD") == head
    assert read_manifest(repo / "traffic")["requests"] == 3


def test_a_file_url_of_the_prefix_or_of_one_snapshot_is_read_with_fsspec(
    repo: Path, prefix: Prefix
) -> None:
    done = import_snapshot(repo, prefix.path.as_uri(), push=False)
    assert done.snapshot == prefix.newer and done.source == prefix.path.as_uri()
    _assert_imported(repo, prefix.path / prefix.newer, prefix.newer, 5)

    one = prefix.path / prefix.older
    assert locate(one.as_uri(), repo.parent / "work")[1] == prefix.older


def test_a_traffic_log_directory_is_snapshotted_with_its_feedback_and_window(
    repo: Path, tmp_path: Path
) -> None:
    raw = _traffic(tmp_path / "raw", 4, 3)
    write_jsonl(
        raw / "old.jsonl",
        [traffic_line("secret production text old", "neutral", ts=NOW - timedelta(days=3))],
    )
    done = import_snapshot(repo, str(raw), since=NOW - timedelta(days=1), push=False)
    manifest = read_manifest(repo / "traffic")
    assert (manifest["requests"], manifest["labelled"], manifest["before_window"]) == (4, 3, 1)
    assert manifest["feedback"]["matched"] == 3
    datetime.strptime(done.snapshot, STAMP_FORMAT)  # named like the CronJob's
    assert _head_files(repo) == {"traffic.dvc", ".gitignore"}
    assert done.snapshot in git(repo, "log", "-1", "--format=%s")
    assert git(repo, "ls-files", "traffic") == ""


def test_a_source_that_is_no_snapshot_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no complete snapshot.*Fix: "):
        import_snapshot(repo, str(tmp_path / "empty"), push=False)
    with pytest.raises(DataError, match="is not a directory"):
        import_snapshot(repo, str(tmp_path / "missing"), push=False)
    assert not (repo / "traffic.dvc").exists() and not (repo / "traffic").exists()


def test_the_cli_imports_without_pushing(repo: Path, prefix: Prefix) -> None:
    proc = subprocess.run(
        [str(TEXTCLF), "snapshot", "import", "--from", str(prefix.path), "--no-push"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["snapshot"] == prefix.newer and out["pushed"] is False
    assert out["requests"] == 5 and out["labelled"] == 2
    assert out["committed"] == git(repo, "rev-parse", "HEAD").strip()
    _assert_imported(repo, prefix.path / prefix.newer, prefix.newer, 5)
    assert not any((repo.parent / "remote").iterdir())


def test_importing_the_same_snapshot_again_is_not_an_error_and_still_pushes(
    repo: Path, prefix: Prefix
) -> None:
    first = import_snapshot(repo, str(prefix.path), push=False)
    again = import_snapshot(repo, str(prefix.path))  # e.g. rerun after the push failed
    assert again.committed == first.committed and again.pushed
    assert "in sync" in dvc(repo, "status", "-c", "traffic.dvc")


@pytest.fixture
def india_time() -> Iterator[None]:
    """The process's local time zone set to UTC+05:30 (POSIX TZ: no tz database needed)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "IST-05:30"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.usefixtures("india_time")
def test_a_traffic_log_directorys_snapshot_is_named_by_the_utc_time(tmp_path: Path) -> None:
    assert time.localtime().tm_gmtoff == 5 * 3600 + 1800  # the zone took effect
    raw = _traffic(tmp_path / "raw", 2, 0)
    _, name = locate(str(raw), tmp_path / "work")
    stamp = datetime.strptime(name, STAMP_FORMAT).replace(tzinfo=UTC)
    assert abs(stamp - datetime.now(UTC)) < timedelta(minutes=5), name
