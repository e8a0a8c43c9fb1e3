"""monitor.yml: a scheduled verdict on production, one issue at most, least privilege per job."""

from __future__ import annotations

from tests.workflows.test_workflows import WORKFLOW_DIR, jobs_of, load, runs, steps, triggers

MONITOR = WORKFLOW_DIR / "monitor.yml"


def test_it_runs_on_a_schedule_and_on_demand_only() -> None:
    doc = load(MONITOR)
    assert triggers(doc) == {"schedule", "workflow_dispatch"}
    assert doc["permissions"] == {}
    assert doc["concurrency"]["cancel-in-progress"] is False  # never two issue writers at once


def test_the_judge_runs_mains_code_with_read_only_repository_access() -> None:
    judge = jobs_of(load(MONITOR))["judge"]
    assert judge["if"].startswith("github.ref == 'refs/heads/main'")
    assert judge["permissions"] == {"contents": "read", "id-token": "write"}
    assert judge["environment"] == "monitor"
    commands = runs(judge)
    assert commands == [
        "make install",
        "make monitor-pull",
        "make monitor-ci",
        'make monitor-verdict >> "$GITHUB_OUTPUT"',
        'make retrain-verdict >> "$GITHUB_OUTPUT"',
    ]
    # Storage credentials only in the step that pulls.
    holders = [s.get("run") for s in steps(judge) if "secrets." in str(s)]
    assert holders == ["make monitor-pull"]
    assert judge["outputs"]["verdict"] == "${{ steps.verdict.outputs.verdict }}"
    assert judge["outputs"]["retrain"] == "${{ steps.retrain.outputs.retrain }}"


def test_one_issue_is_updated_or_opened_and_only_on_drift_or_degraded() -> None:
    issue = jobs_of(load(MONITOR))["issue"]
    assert issue["needs"] == "judge"
    assert issue["if"] == (
        "needs.judge.outputs.verdict == 'drift' || needs.judge.outputs.verdict == 'degraded'"
    )
    assert issue["permissions"] == {"issues": "write"}
    assert not [s for s in steps(issue) if "actions/checkout@" in s.get("uses", "")]
    assert "secrets." not in str(issue)
    commands = runs(issue)
    assert all(c.startswith(("gh ", 'echo "number=$(gh issue list ')) for c in commands), commands
    by_name = {s.get("name"): s for s in steps(issue)}
    find = by_name["Find the open monitor issue"]["run"]
    assert "--label textclf-monitor --state open --limit 1" in find
    edit, create = by_name["Update it"], by_name["Or open it"]
    assert edit["if"] == "steps.find.outputs.number != ''" and "gh issue edit" in edit["run"]
    assert create["if"] == "steps.find.outputs.number == ''" and "gh issue create" in create["run"]
    assert "--label textclf-monitor" in create["run"]
    assert [c for c in commands if c.startswith("gh issue create")] == [create["run"]]


APP_TOKEN = "actions/create-github-app-token@1b10c78c7865c340bc4f6099eb2f838309f1e8c3"


def test_a_retrain_is_proposed_on_mains_code_only_with_enough_labels() -> None:
    propose = jobs_of(load(MONITOR))["propose"]
    assert propose["needs"] == "judge"
    assert propose["if"] == (
        "github.ref == 'refs/heads/main' && needs.judge.outputs.retrain == 'true'"
    )
    assert propose["environment"] == "monitor"
    # Its own token only reads: the App's token pushes the branch and opens the PR (a PR opened
    # with GITHUB_TOKEN starts no pull_request runs, so the review would never judge it).
    assert propose["permissions"] == {"contents": "read", "id-token": "write"}
    checkout = next(s for s in steps(propose) if "actions/checkout@" in s.get("uses", ""))
    assert checkout["with"]["persist-credentials"] is False
    assert runs(propose) == [
        "make install",
        "make retrain-pull",
        'make retrain-propose REMOTE="https://github.com/${REPO}.git"',  # no token in it
        'make retrain-result >> "$GITHUB_OUTPUT"',
        'gh pr create --base main --head "$BRANCH" --title "$TITLE" '
        "--body-file reports/retrain/pr.md",
    ]


def test_the_proposal_credentials_are_only_where_they_are_used() -> None:
    propose = jobs_of(load(MONITOR))["propose"]
    by_name = {s.get("name"): s for s in steps(propose)}
    holders = [s.get("name") or s.get("uses") for s in steps(propose) if "secrets." in str(s)]
    assert holders == [
        "Pull the data (and, without SNAPSHOT_PREFIX, main's traffic snapshot)",
        "A token of the retrain App (its pushes and PRs start the review)",
        "Retrain on branch retrain/<UTC date>, dvc push, push the branch",
    ]
    app = by_name["A token of the retrain App (its pushes and PRs start the review)"]
    assert app["uses"].startswith(APP_TOKEN)  # pinned by v3.1.1's commit
    assert app["with"]["permission-contents"] == "write"
    assert app["with"]["permission-pull-requests"] == "write"
    token = "${{ steps.app.outputs.token }}"
    users = [s.get("name") for s in steps(propose) if token in str(s)]
    assert users == ["Retrain on branch retrain/<UTC date>, dvc push, push the branch",
                     "Open the pull request"]  # fmt: skip
    pushing = by_name["Retrain on branch retrain/<UTC date>, dvc push, push the branch"]
    assert pushing["env"]["TEXTCLF_PUSH_TOKEN"] == token  # a credential helper reads it
    opened = by_name["Open the pull request"]
    assert opened["if"] == "steps.result.outputs.proposed == 'true'"
    assert opened["env"]["GH_TOKEN"] == token
    assert [c for c in runs(propose) if c.startswith("gh ")] == [opened["run"]]
