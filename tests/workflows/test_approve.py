"""Which pull-request commit the GPU review may run (textclf.ci.approve, run by review.yml)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from textclf.ci.approve import LABEL, decide

REPOSITORY = "acme/textclf"
SHA = "0123456789abcdef0123456789abcdef01234567"  # pragma: allowlist secret


def event(action: str, head_repo: str, labels: tuple[str, ...] = (), added: str = "") -> Any:
    """A pull_request_target payload, as GitHub sends it (the fields the decision reads)."""
    payload: dict[str, Any] = {
        "action": action,
        "pull_request": {
            "number": 7,
            "head": {"sha": SHA, "ref": "feature", "repo": {"full_name": head_repo}},
            "labels": [{"name": name} for name in labels],
        },
    }
    if added:
        payload["label"] = {"name": added}
    return payload


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
def test_every_push_to_a_branch_of_this_repository_is_reviewed(action: str) -> None:
    decision = decide(event(action, REPOSITORY), REPOSITORY)
    assert (decision.run, decision.sha, decision.fork, decision.unlabel) == (
        True,
        SHA,
        False,
        False,
    )


def test_labels_on_a_branch_of_this_repository_start_nothing() -> None:
    decision = decide(event("labeled", REPOSITORY, (LABEL,), added=LABEL), REPOSITORY)
    assert not decision.run


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened"])
def test_fork_code_waits_for_a_maintainer(action: str) -> None:
    decision = decide(event(action, "mallory/textclf"), REPOSITORY)
    assert (decision.run, decision.fork, decision.unlabel) == (False, True, False)
    assert f"add the {LABEL} label" in decision.reason


def test_the_label_approves_exactly_the_commit_it_was_added_on() -> None:
    decision = decide(event("labeled", "mallory/textclf", (LABEL,), added=LABEL), "acme/textclf")
    assert (decision.run, decision.sha, decision.fork) == (True, SHA, True)


def test_a_new_push_to_an_approved_fork_removes_the_approval() -> None:
    decision = decide(event("synchronize", "mallory/textclf", (LABEL,)), REPOSITORY)
    assert (decision.run, decision.unlabel) == (False, True)


def test_another_label_on_a_fork_is_not_an_approval() -> None:
    decision = decide(event("labeled", "mallory/textclf", ("bug",), added="bug"), REPOSITORY)
    assert not decision.run


def test_a_fork_whose_name_matches_in_another_case_is_still_a_fork() -> None:
    assert decide(event("opened", "ACME/textclf"), REPOSITORY).fork


def test_a_payload_without_a_head_sha_is_refused() -> None:
    bad = event("opened", REPOSITORY)
    bad["pull_request"]["head"]["sha"] = "main"
    with pytest.raises(ValueError, match="40-hex"):
        decide(bad, REPOSITORY)


def test_the_module_runs_with_the_standard_library_only(tmp_path: Path) -> None:
    """The approve job runs it before anything is installed: `python -I -S` sees no packages."""
    payload = tmp_path / "event.json"
    payload.write_text(json.dumps(event("labeled", "mallory/textclf", (LABEL,), added=LABEL)))
    outputs = tmp_path / "outputs"
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import sys; sys.path.insert(0, 'src'); "
            "import runpy; runpy.run_module('textclf.ci.approve', run_name='__main__')",
        ],
        cwd=REPO,
        env={
            "GITHUB_EVENT_PATH": str(payload),
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_OUTPUT": str(outputs),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert written["run"] == "true" and written["sha"] == SHA and written["fork"] == "true"
