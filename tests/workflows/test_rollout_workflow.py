"""rollout.yml: Argo CD's rollout result -> a comment on the merged PR, and a revert PR on abort.

actionlint, zizmor, the workflow schema, pinning, the default-deny token and the trust rules run
on this file with every other workflow (tests/workflows/test_workflows.py); here, what is its
own: which job holds what, and that every step is a make target, a tested `textclf rollout`
command, or one `gh` API call.
"""

from __future__ import annotations

import copy
import re
import shlex
from typing import Any

import pytest
import typer.main

from tests.workflows.test_workflows import (
    WORKFLOW_DIR,
    _checkouts,
    _holds_secrets,
    _pr_checkouts,
    jobs_of,
    load,
    pin_problems,
    runs,
    steps,
    triggers,
    trust_problems,
)
from textclf.lifecycle.cli import rollout_app
from textclf.lifecycle.rollout import EVENT_TYPES, PUSH_TOKEN_ENV

ROLLOUT = WORKFLOW_DIR / "rollout.yml"
APP_TOKEN = "${{ steps.app.outputs.token }}"
#: What a step of this workflow may run: main's make targets, the tested commands, the API calls.
ALLOWED = (
    "make install",
    ".venv/bin/textclf rollout comment ",
    ".venv/bin/textclf rollout revert ",
    'gh pr comment "$PR" ',
    'gh pr create --repo "$REPO" ',
    'gh pr merge "$BRANCH" ',
)


def doc() -> dict[str, Any]:
    return load(ROLLOUT)


def step_problems(workflow: dict[str, Any]) -> list[str]:
    """Each step command that is not one allowed command on one line."""
    problems = []
    for name, job in jobs_of(workflow).items():
        for step in steps(job):
            if "run" not in step:
                continue
            command = " ".join(str(step["run"]).split())
            if "\n" in str(step["run"]).strip() or "&&" in command or ";" in command:
                problems.append(f"{name}: more than one command in {command!r}")
            elif not command.startswith(ALLOWED):
                problems.append(f"{name}: runs {command!r}")
            if "${{" in command:
                problems.append(f"{name}: an expression inside run (pass it in env)")
    return problems


def test_it_runs_on_the_two_dispatch_events_only() -> None:
    workflow = doc()
    assert triggers(workflow) == {"repository_dispatch"}
    assert workflow["on"]["repository_dispatch"]["types"] == list(EVENT_TYPES)
    assert workflow["permissions"] == {}
    group = workflow["concurrency"]["group"]
    assert group.startswith("rollout-${{ github.event.client_payload.operation.syncRevision")
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert trust_problems(workflow) == []
    assert pin_problems(ROLLOUT.read_text("utf-8")) == []


def test_every_step_is_a_make_target_a_tested_command_or_an_api_call() -> None:
    assert step_problems(doc()) == []


@pytest.mark.parametrize(
    ("command", "caught"),
    [
        ("git push origin HEAD:revert/x", "runs 'git push"),
        ("make install && curl https://example.com", "more than one command"),
        ('gh pr comment "$PR" --body "${{ github.event.client_payload.app.name }}"', "expression"),
    ],
)
def test_the_step_check_catches_a_command_outside_the_list(command: str, caught: str) -> None:
    broken = copy.deepcopy(doc())
    broken["jobs"]["map"]["steps"].append({"run": command})
    assert any(caught in p for p in step_problems(broken)), step_problems(broken)


def _options(command: str) -> set[str]:
    group: Any = typer.main.get_command(rollout_app)  # typer's (vendored) click Group
    sub = group.commands[command]
    return {opt for param in sub.params for opt in getattr(param, "opts", [])}


def test_the_workflows_textclf_lines_use_the_commands_real_options() -> None:
    for job in jobs_of(doc()).values():
        for command in runs(job):
            if not command.startswith(".venv/bin/textclf rollout "):
                continue
            argv = shlex.split(command)
            used = {a for a in argv[3:] if a.startswith("--")}
            assert used <= _options(argv[2]), used - _options(argv[2])
            assert '--event "$GITHUB_EVENT_PATH"' in command
            assert '--github-output "$GITHUB_OUTPUT"' in command


def test_map_reads_main_with_its_history_and_a_read_only_token() -> None:
    job = jobs_of(doc())["map"]
    assert job["permissions"] == {"contents": "read"} and not _holds_secrets(job)
    (checkout,) = _checkouts(job)
    assert checkout == {"fetch-depth": 0, "persist-credentials": False}
    assert _pr_checkouts(job) == [], "the default branch's code: no ref"
    assert runs(job) == [
        "make install",
        '.venv/bin/textclf rollout comment --event "$GITHUB_EVENT_PATH" '
        '--out rollout-comment.md --github-output "$GITHUB_OUTPUT"',
    ]
    assert job["outputs"]["pr"] == "${{ steps.map.outputs.pr }}"


def test_the_comment_job_runs_no_code_and_writes_only_pull_requests() -> None:
    job = jobs_of(doc())["comment"]
    assert job["needs"] == "map"
    assert job["permissions"] == {"pull-requests": "write"}
    assert _checkouts(job) == [] and not _holds_secrets(job)
    (download,) = [s for s in steps(job) if "download-artifact" in s.get("uses", "")]
    assert download["with"]["name"] == "rollout-comment"
    (posted,) = [s for s in steps(job) if "run" in s]
    assert posted["run"].startswith('gh pr comment "$PR" --repo "$REPO" --body-file ')
    assert posted["env"]["PR"] == "${{ needs.map.outputs.pr }}"
    assert posted["env"]["GH_TOKEN"] == "${{ github.token }}"


def test_the_revert_runs_on_an_abort_only_with_an_app_token_in_the_steps_that_push() -> None:
    job = jobs_of(doc())["revert"]
    assert job["if"] == "github.event.action == 'rollout-degraded'"
    assert job["needs"] == "map", "no revert of a revision that maps to no pull request"
    assert job["environment"] == "rollback"
    assert job["permissions"] == {"contents": "read"}, "the App's token writes, not GITHUB_TOKEN"
    (checkout,) = _checkouts(job)
    assert checkout == {"fetch-depth": 0, "persist-credentials": False}
    by_id = {s.get("id"): s for s in steps(job)}
    app = by_id["app"]
    assert app["uses"].startswith("actions/create-github-app-token@")
    assert app["with"] == {
        "client-id": "${{ vars.ROLLBACK_APP_CLIENT_ID }}",
        "private-key": "${{ secrets.ROLLBACK_APP_PRIVATE_KEY }}",
        "permission-contents": "write",
        "permission-pull-requests": "write",
    }
    order = [s.get("id") or s.get("name") or s.get("uses") for s in steps(job)]
    assert order.index("Install") < order.index("app"), "nothing is installed after the token"
    with_secret = [s for s in steps(job) if "secrets." in str(s)]
    assert with_secret == [app]
    with_token = [s for s in steps(job) if APP_TOKEN in str(s)]
    assert [s.get("id") or s["run"].split()[0:3] for s in with_token] == [
        "revert",
        ["gh", "pr", "create"],
        ["gh", "pr", "merge"],
    ]
    revert = by_id["revert"]
    assert revert["env"][PUSH_TOKEN_ENV] == APP_TOKEN
    assert "--push origin --body-out revert-pr.md" in revert["run"]


def test_the_revert_pr_is_labelled_and_auto_merge_is_off_unless_a_variable_says_so() -> None:
    job = jobs_of(doc())["revert"]
    create = next(s for s in steps(job) if str(s.get("run", "")).startswith("gh pr create"))
    assert '--head "$BRANCH"' in create["run"] and "--base main" in create["run"]
    assert "--label rollback" in create["run"] and "--body-file revert-pr.md" in create["run"]
    assert create["env"]["BRANCH"] == "${{ steps.revert.outputs.branch }}"
    assert create["env"]["TITLE"] == "${{ steps.revert.outputs.title }}"
    merge = next(s for s in steps(job) if str(s.get("run", "")).startswith("gh pr merge"))
    assert merge["if"] == "vars.ROLLBACK_AUTO_MERGE == 'true'"
    assert "--auto --merge" in merge["run"], "a merge commit: the next rollout maps it to its PR"


def test_the_header_names_the_settings_the_docs_explain() -> None:
    header = ROLLOUT.read_text("utf-8").split("\nname:", 1)[0]
    docs = (WORKFLOW_DIR.parents[1] / "docs" / "release.md").read_text("utf-8")
    for name in ("ROLLBACK_APP_CLIENT_ID", "ROLLBACK_APP_PRIVATE_KEY", "ROLLBACK_AUTO_MERGE"):
        assert name in header and name in docs, name
    assert re.search(r"environment `rollback`", header) and "environment `rollback`" in docs
