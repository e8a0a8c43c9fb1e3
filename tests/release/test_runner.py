"""The review runners' image: its tag, its build context, its lock and its pin in values.yaml.

The image itself is built and run (with no network) in tests/image/test_runner_image.py; here the
offline parts, each with the change that must break it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.release.conftest import REPO, git, release
from textclf.errors import ReleaseError
from textclf.release import runner


def _copy(tmp_path: Path, *paths: str) -> Path:
    root = tmp_path / "repo"
    for path in {*runner.FILES, runner.VALUES, "pyproject.toml", *paths}:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / path, root / path)
    git(root, "init", "-q")
    return root


def test_the_tag_is_a_content_address_of_the_containerfile_and_the_lock(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    first = runner.tag(root)
    assert re.fullmatch(r"r-[0-9a-f]{12}", first)
    assert runner.tag(root) == first
    (root / "pyproject.toml").write_text("# not built from\n", encoding="utf-8")
    (root / runner.VALUES).write_text("# nor this\n", encoding="utf-8")
    assert runner.tag(root) == first
    for path in runner.FILES:
        original = (root / path).read_bytes()
        (root / path).write_bytes(original + b"\n")
        assert runner.tag(root) != first, f"a change to {path} must change the tag"
        (root / path).write_bytes(original)
    assert runner.tag(root) == first


def test_rev_reads_the_commit_not_the_workspace(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "runner")
    committed = runner.tag(root, "HEAD")
    assert committed == runner.tag(root)
    (root / runner.LOCK).write_text("# edited, not committed\n", encoding="utf-8")
    assert runner.tag(root) != committed
    assert runner.tag(root, "HEAD") == committed


def test_a_missing_file_names_itself(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / runner.LOCK).unlink()
    with pytest.raises(ReleaseError, match=re.escape(runner.LOCK)):
        runner.tag(root)


def test_the_context_holds_the_two_files_and_nothing_else(tmp_path: Path) -> None:
    root = _copy(tmp_path, "README.md")
    dest = tmp_path / "context"
    assert runner.stage_context(root, dest) == list(runner.FILES)
    found = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert found == sorted(runner.FILES)
    with pytest.raises(ReleaseError, match="not empty"):
        runner.stage_context(root, dest)


def test_the_committed_lock_pins_every_dependency_of_pyproject() -> None:
    assert runner.lock_problems(REPO) == []
    result = release(REPO, "runner-check")
    assert result.exit_code == 0, result.output


TYPER = '"typer>=0.12",'


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        # A new dependency that nobody locked.
        (TYPER, TYPER + '\n  "unlocked-pkg>=1",', "unlocked-pkg"),
        # A raised floor the lock no longer meets.
        (TYPER, '"typer>=999",', "typer"),
        # A new dev tool (the lock holds the dev extra too).
        ('"pytest>=8",', '"pytest>=8",\n  "unlocked-tool",', "unlocked-tool"),
    ],
)
def test_a_stale_lock_fails_the_check_and_says_make_lock(
    tmp_path: Path, old: str, new: str, named: str
) -> None:
    root = _copy(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert old in text, f"{old} is no longer in pyproject.toml"
    pyproject.write_text(text.replace(old, new, 1), encoding="utf-8")
    problems = runner.lock_problems(root)
    assert len(problems) == 1 and named in problems[0] and "make lock" in problems[0], problems
    result = release(root, "runner-check")
    assert result.exit_code == 2 and named in result.output


def test_a_windows_only_dependency_needs_no_pin(tmp_path: Path) -> None:
    """Markers are judged for the runners' platform (Linux x86_64, Python 3.11)."""
    root = _copy(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(
        text.replace(TYPER, TYPER + "\n  \"pywin32; sys_platform == 'win32'\","),
        encoding="utf-8",
    )
    assert runner.lock_problems(root) == []


def test_the_pin_lands_on_the_runner_container_only(tmp_path: Path) -> None:
    """values.yaml must keep one `runner` container the pin can find (the chart runs it)."""
    root = _copy(tmp_path)
    assert runner.pinned(root).startswith("ghcr.io/")
    values = root / runner.VALUES
    values.write_text(
        values.read_text(encoding="utf-8").replace("- name: runner", "- name: other"),
        encoding="utf-8",
    )
    with pytest.raises(ReleaseError, match="named 'runner'"):
        runner.pinned(root)
