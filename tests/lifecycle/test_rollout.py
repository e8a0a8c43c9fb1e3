"""`textclf rollout`: a rollout event -> its merge on main and pull request -> comment, revert.

The repository is real: a main branch with GitHub-style merges (``git merge --no-ff`` with
"Merge pull request #N from ..." messages, a squash "... (#N)", a commit pushed straight to
main), pushed to a local bare repository that is the clones' ``origin``. The events are the
committed samples (tests/deploy/test_notifications.py renders them from the notification
template), pointed at this repository's commits.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from textclf.cli import app
from textclf.lifecycle.rollout import (
    MARKER,
    PUSH_TOKEN_ENV,
    RolloutError,
    comment_markdown,
    find_merge,
    load_event,
    parse_event,
    push_args,
    revert_merge,
)

DATA = Path(__file__).resolve().parent / "data"
ENV = {
    "GIT_AUTHOR_NAME": "dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
OVERLAY = "deploy/overlays/production/kustomization.yaml"


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **ENV}
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def commit(root: Path, message: str, files: dict[str, str]) -> str:
    write(root, files)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def merge_pr(
    root: Path, number: int, branch: str, title: str, commits: list[dict[str, str]]
) -> str:
    """A pull request merged as GitHub's "Create a merge commit" does it (``branch`` is made
    from main unless it exists)."""
    exists = (
        subprocess.run(
            ["git", "rev-parse", "--verify", "-q", branch], cwd=root, capture_output=True
        ).returncode
        == 0
    )
    git(root, "switch", "-q", *([] if exists else ["-c"]), branch, *([] if exists else ["main"]))
    for i, files in enumerate(commits):
        commit(root, f"{title} ({i + 1}/{len(commits)})", files)
    git(root, "switch", "-q", "main")
    message = f"Merge pull request #{number} from your-org/{branch}\n\n{title}"
    git(root, "merge", "-q", "--no-ff", "-m", message, branch)
    return git(root, "rev-parse", "HEAD")


def overlay(tag: str) -> str:
    return f'images:\n  - name: textclf\n    newTag: "{tag}"\n'


@dataclass
class Repo:
    """The developers' clone (``seed``), the bare ``origin`` and a fresh clone of it (``work``)."""

    seed: Path
    origin: Path
    work: Path
    shas: dict[str, str]

    def clone(self, name: str) -> Path:
        target = self.origin.parent / name
        git(self.origin.parent, "clone", "-q", str(self.origin), str(target))
        return target


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    shas = {
        "init": commit(
            seed,
            "Initial model",
            {OVERLAY: overlay("m-000000000001"), "dvc.lock": "md5: 1\n", "README.md": "hi\n"},
        )
    }
    shas["pr1"] = merge_pr(
        seed,
        1,
        "model-a",
        "Model: more epochs",
        [{OVERLAY: overlay("m-00000000000a"), "dvc.lock": "md5: a\n"}],
    )
    shas["pr2"] = commit(seed, "Docs: the release page (#2)", {"docs/release.md": "release\n"})
    shas["direct"] = commit(seed, "Hotfix pushed straight to main", {"README.md": "hello\n"})
    shas["pr3"] = merge_pr(
        seed,
        3,
        "model-c",
        "Model: new backbone <b>@team</b>",
        [
            {"dvc.lock": "md5: c\n"},
            {OVERLAY: overlay("m-00000000000c"), "params.yaml": "epochs: 9\n"},
        ],
    )
    shas["pr3-first"] = git(seed, "rev-parse", "model-c~1")
    git(seed, "switch", "-q", "-c", "unmerged", "main")
    shas["unmerged"] = commit(seed, "An idea nobody merged", {"idea.txt": "x\n"})
    git(seed, "switch", "-q", "main")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    return Repo(seed, origin, work, shas)


def event(name: str, revision: str | None = None, **changes: Any) -> dict[str, Any]:
    """A committed sample event, pointed at ``revision`` (both the sync's and the operation's)."""
    raw = json.loads((DATA / f"event-{name}.json").read_text("utf-8"))
    if revision is not None:
        raw["client_payload"]["revision"] = revision
        raw["client_payload"]["operation"]["syncRevision"] = revision
    for path, value in changes.items():
        target = raw
        *parents, last = path.split("__")
        for part in parents:
            target = target[part]
        target[last] = value
    return raw


def event_file(tmp_path: Path, raw: dict[str, Any], name: str = "event.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["rollout", *args], env={**ENV, **(env or {})})


# --------------------------------------------------------------------------- the event


def test_the_sample_events_parse() -> None:
    for name in ("completed", "degraded", "unknown-revision"):
        loaded = load_event(DATA / f"event-{name}.json")
        assert loaded.client_payload.app.name == "textclf-production"
    degraded = load_event(DATA / "event-degraded.json")
    assert degraded.degraded and degraded.client_payload.rollouts[0].health.status == "Degraded"


def test_a_missing_field_is_named_with_the_fix(tmp_path: Path) -> None:
    raw = event("degraded")
    del raw["client_payload"]["revision"]
    raw["client_payload"]["app"].pop("name")
    with pytest.raises(RolloutError) as err:
        load_event(event_file(tmp_path, raw))
    message = str(err.value)
    assert "client_payload.revision: Field required" in message
    assert "client_payload.app.name: Field required" in message
    assert "deploy/argocd/notifications.yaml" in message and "Fix:" in message

    raw = event("degraded", action="rollout-paused")
    with pytest.raises(RolloutError, match="action"):
        parse_event(raw, "x")
    raw = event("degraded", revision="main")
    with pytest.raises(RolloutError, match="'main' is not a commit sha"):
        parse_event(raw, "x")
    with pytest.raises(RolloutError, match="no such event file"):
        load_event(tmp_path / "nope.json")


def test_the_operations_revision_is_what_rolled_out() -> None:
    """A later merge that changed no manifest moves the sync revision, not the operation's."""
    raw = event("degraded", revision="a" * 40)
    raw["client_payload"]["revision"] = "b" * 40
    assert parse_event(raw, "x").deployed_revision == "a" * 40
    raw["client_payload"]["operation"]["syncRevision"] = None
    assert parse_event(raw, "x").deployed_revision == "b" * 40


# --------------------------------------------------------------------------- revision -> PR


def test_a_merge_commit_maps_to_its_pull_request(repo: Repo) -> None:
    merge = find_merge(repo.work, repo.shas["pr3"])
    assert (merge.sha, merge.pr, merge.is_merge_commit) == (repo.shas["pr3"], 3, True)
    assert merge.title == "Model: new backbone <b>@team</b>"
    assert not merge.is_rollback
    # A commit of the pull request's branch maps to the merge that brought it in.
    assert find_merge(repo.work, repo.shas["pr3-first"]).sha == repo.shas["pr3"]
    assert find_merge(repo.work, repo.shas["pr1"][:12]).pr == 1


def test_a_squash_commit_maps_to_its_pull_request(repo: Repo) -> None:
    merge = find_merge(repo.work, repo.shas["pr2"])
    assert (merge.pr, merge.is_merge_commit, merge.title) == (2, False, "Docs: the release page")


@pytest.mark.parametrize(
    ("which", "says"),
    [
        ("direct", "is not a pull-request merge"),
        ("unmerged", "is not on origin/main"),
        ("0badc0de0badc0de0badc0de0badc0de0badc0de", "is not a commit of the clone"),
    ],
)
def test_a_revision_that_maps_to_no_merge_is_a_clear_error(
    repo: Repo, which: str, says: str
) -> None:
    revision = repo.shas.get(which, which)
    with pytest.raises(RolloutError) as err:
        find_merge(repo.work, revision)
    assert says in str(err.value) and revision in str(err.value) and "Fix:" in str(err.value)


def test_the_comment_command_fails_on_the_unknown_revision_sample(
    repo: Repo, tmp_path: Path
) -> None:
    out = tmp_path / "comment.md"
    result = cli(
        "comment",
        "--event",
        str(DATA / "event-unknown-revision.json"),
        "--out",
        str(out),
        "--root",
        str(repo.work),
    )
    assert result.exit_code == 2
    assert "0badc0de0badc0de0badc0de0badc0de0badc0de is not a commit" in result.stderr
    assert "fetch-depth: 0" in result.stderr
    assert not out.exists()
    missing = cli(
        "comment",
        "--event",
        str(DATA / "event-completed.json"),
        "--out",
        str(out),
        "--root",
        str(repo.work),
        "--main",
        "origin/trunk",
    )
    assert missing.exit_code == 2 and "origin/trunk is not a branch" in missing.stderr


# --------------------------------------------------------------------------- the comment


def test_the_completed_comment_shows_what_the_event_holds(repo: Repo, tmp_path: Path) -> None:
    raw = event("completed", repo.shas["pr3"])
    out, outputs = tmp_path / "comment.md", tmp_path / "github-output"
    result = cli(
        "comment",
        "--event",
        str(event_file(tmp_path, raw)),
        "--out",
        str(out),
        "--root",
        str(repo.work),
        "--github-output",
        str(outputs),
    )
    assert result.exit_code == 0, result.output
    text = out.read_text("utf-8")
    assert text.startswith(MARKER + "\n## ✅ Production rollout completed: textclf-production")
    assert f"`{repo.shas['pr3']}`, this pull request's merge commit" in text
    assert "| Sync operation | Succeeded: successfully synced (all tasks run)" in text
    assert "| Application health | **Healthy** |" in text
    assert "| Rollout `textclf` | **Healthy** |" in text
    for image in raw["client_payload"]["images"]:
        assert f"`{image}`" in text
    assert "| Application | textclf-production (environment production, namespace " in text
    linked = event("completed", repo.shas["pr3"], client_payload__argocdURL="https://cd.example")
    merge = find_merge(repo.work, repo.shas["pr3"])
    assert "[textclf-production](https://cd.example/applications/textclf-production)" in (
        comment_markdown(parse_event(linked, "x"), merge)
    )
    odd = event("completed", repo.shas["pr3"], client_payload__argocdURL="https://x/)[y](z")
    assert "](https://x" not in comment_markdown(parse_event(odd, "x"), merge)
    assert outputs.read_text("utf-8").splitlines() == [
        "pr=3",
        f"merge={repo.shas['pr3']}",
        f"revision={repo.shas['pr3']}",
        "event=rollout-completed",
    ]


def test_the_degraded_comment_shows_the_abort_reason_and_the_limit(repo: Repo) -> None:
    loaded = parse_event(event("degraded", repo.shas["pr3-first"]), "x")
    text = comment_markdown(loaded, find_merge(repo.work, loaded.deployed_revision))
    assert "## ❌ Production rollout degraded: textclf-production" in text
    assert "which main took in with this pull request's merge commit" in text
    assert (
        "| Rollout `textclf` | **Degraded**: RolloutAborted: Rollout aborted update to revision 7: "
        'Metric "error-rate" assessed Failed due to failed (2) &gt; failureLimit (1) |'
    ) in text
    assert "| `error-rate` | Failed | 2 failed | failureLimit 1 |" in text
    assert "| Application health | **Degraded**: Caused by argoproj.io/Rollout:" in text
    assert f"reverts `{repo.shas['pr3']}` (branch `revert/{repo.shas['pr3'][:12]}`)" in text
    assert "| Source | https://github.com/your-org/gitops-text-classifier.git |" in text
    assert "kubectl argo rollouts get rollout textclf -n textclf-production" in text


def test_the_comment_escapes_what_the_cluster_wrote(repo: Repo) -> None:
    raw = event("degraded", repo.shas["pr3"])
    rollout = raw["client_payload"]["rollouts"][0]
    rollout["health"]["message"] = "boom <img src=x> @admin #12 | `tick` [link](http://x)"
    raw["client_payload"]["app"]["name"] = "prod *bold* @ops"
    raw["client_payload"]["images"] = ["evil`image|x"]
    text = comment_markdown(parse_event(raw, "x"), find_merge(repo.work, repo.shas["pr3"]))
    assert "&lt;img src=x&gt;" in text and "<img" not in text
    assert "@\u200badmin" in text and "#\u200b12" in text and "@admin" not in text
    assert "\\| \\`tick\\` \\[link\\](http://x)" in text
    assert "prod \\*bold\\* @\u200bops" in text
    assert "``evil`image\\|x``" in text


def test_without_persisted_resource_health_the_comment_says_why(repo: Repo) -> None:
    raw = event("degraded", repo.shas["pr3"])
    raw["client_payload"]["rollouts"][0]["health"] = {"status": None, "message": None}
    text = comment_markdown(parse_event(raw, "x"), find_merge(repo.work, repo.shas["pr3"]))
    assert "| Rollout `textclf` | not recorded |" in text
    assert "controller.resource.health.persist" in text
    assert "analysis metric" not in text


# --------------------------------------------------------------------------- the revert


def _tree(root: Path, rev: str) -> str:
    return git(root, "rev-parse", f"{rev}^{{tree}}")


def test_the_revert_restores_the_merges_first_parent_and_is_pushed(
    repo: Repo, tmp_path: Path
) -> None:
    merge = repo.shas["pr3"]
    body, outputs = tmp_path / "body.md", tmp_path / "github-output"
    result = cli(
        "revert",
        "--event",
        str(event_file(tmp_path, event("degraded", merge))),
        "--root",
        str(repo.work),
        "--push",
        "origin",
        "--body-out",
        str(body),
        "--github-output",
        str(outputs),
        "--author-name",
        "rollback[bot]",
        "--author-email",
        "rollback[bot]@users.noreply.github.com",
    )
    assert result.exit_code == 0, result.output
    branch = f"revert/{merge[:12]}"
    pushed = git(repo.origin, "rev-parse", f"refs/heads/{branch}")
    assert git(repo.origin, "rev-parse", f"{pushed}^") == merge, "on top of main"
    assert _tree(repo.origin, pushed) == _tree(repo.origin, f"{merge}^1")
    message = git(repo.origin, "log", "-1", "--format=%B", pushed)
    assert message.startswith('Revert "Model: new backbone <b>@team</b>" (#3)')
    parent = git(repo.origin, "rev-parse", f"{merge}^1")
    assert f"This reverts commit {merge}, reversing changes made to {parent}" in message
    assert "pull request #3" in message and "failureLimit (1)" in message
    assert git(repo.origin, "log", "-1", "--format=%an <%ae>", pushed) == (
        "rollback[bot] <rollback[bot]@users.noreply.github.com>"
    )
    text = body.read_text("utf-8")
    assert text.startswith(MARKER) and f"Reverts #3 (`{merge}`)" in text
    assert f"`git revert -m 1 {merge}`" in text and "content address" in text
    assert "| `error-rate` | Failed | 2 failed | failureLimit 1 |" in text
    lines = dict(line.split("=", 1) for line in outputs.read_text("utf-8").splitlines())
    assert lines == {
        "branch": branch,
        "merge": merge,
        "pr": "3",
        "title": 'Revert "Model: new backbone <b>@team</b>" (#3): production rollout degraded',
    }
    # Main itself is untouched: the revert is a pull request.
    assert git(repo.origin, "rev-parse", "refs/heads/main") == merge


def test_a_revert_after_later_merges_undoes_only_that_merge(repo: Repo, tmp_path: Path) -> None:
    """Main moved on (a squash merge of other files): the revert keeps it."""
    later = commit(repo.seed, "Docs: more (#4)", {"docs/more.md": "more\n"})
    git(repo.seed, "push", "-q", str(repo.origin), "main")
    work = repo.clone("work2")
    merge = repo.shas["pr3"]
    result = revert_merge(work, parse_event(event("degraded", merge), "x"))
    assert git(work, "rev-parse", "HEAD^") == later
    assert git(work, "symbolic-ref", "--short", "HEAD") == result.branch
    assert (work / OVERLAY).read_text("utf-8") == overlay("m-00000000000a"), "PR #1's pin back"
    assert (work / "dvc.lock").read_text("utf-8") == "md5: a\n"
    assert not (work / "params.yaml").exists(), "PR #3 added it"
    assert (work / "docs" / "more.md").read_text("utf-8") == "more\n", "PR #4 stays"
    assert git(work, "status", "--porcelain") == ""


def test_a_squash_merge_is_reverted_without_a_mainline(repo: Repo) -> None:
    result = revert_merge(repo.work, parse_event(event("degraded", repo.shas["pr2"]), "x"))
    assert _tree(repo.work, result.commit) != _tree(repo.work, "origin/main")
    assert not (repo.work / "docs" / "release.md").exists()
    assert f"`git revert {repo.shas['pr2']}`" in result.body


@pytest.mark.parametrize(
    ("raw_changes", "says"),
    [
        ({"action": "rollout-completed"}, "only a degraded rollout is reverted"),
        ({"client_payload__app__environment": "staging"}, "not 'production': not reverting"),
    ],
)
def test_the_revert_refuses_what_it_must_not_revert(
    repo: Repo, raw_changes: dict[str, Any], says: str
) -> None:
    raw = event("degraded", repo.shas["pr3"], **raw_changes)
    with pytest.raises(RolloutError, match=says):
        revert_merge(repo.work, parse_event(raw, "x"))
    assert git(repo.work, "branch", "--list", "revert/*") == ""


def test_a_rollback_is_never_reverted_and_a_merge_never_twice(repo: Repo, tmp_path: Path) -> None:
    merge = repo.shas["pr3"]
    first = revert_merge(repo.seed, parse_event(event("degraded", merge), "x"), main="main")
    git(repo.seed, "switch", "-q", "main")
    rollback = merge_pr(repo.seed, 5, first.branch, first.title, [])
    git(repo.seed, "push", "-q", str(repo.origin), "main")
    work = repo.clone("work3")
    with pytest.raises(RolloutError, match="is itself a rollback"):
        revert_merge(work, parse_event(event("degraded", rollback), "x"))
    with pytest.raises(RolloutError, match=f"already reverted on main by {first.commit}"):
        revert_merge(work, parse_event(event("degraded", merge), "x"))
    comment = comment_markdown(
        parse_event(event("degraded", rollback), "x"), find_merge(work, rollback)
    )
    assert "itself a rollback, so nothing is reverted automatically" in comment


def test_a_revert_that_conflicts_leaves_the_checkout_as_it_was(repo: Repo) -> None:
    commit(repo.seed, "Params again (#6)", {"params.yaml": "epochs: 12\n"})
    git(repo.seed, "push", "-q", str(repo.origin), "main")
    work = repo.clone("work4")
    with pytest.raises(RolloutError) as err:
        revert_merge(work, parse_event(event("degraded", repo.shas["pr3"]), "x"))
    assert "conflicts in params.yaml" in str(err.value) and "Fix:" in str(err.value)
    assert git(work, "symbolic-ref", "--short", "HEAD") == "main"
    assert git(work, "status", "--porcelain") == ""
    assert git(work, "branch", "--list", "revert/*") == ""


def test_a_merge_main_already_undid_by_hand_is_not_reverted_again(repo: Repo) -> None:
    commit(
        repo.seed,
        "Back to the old model (#7)",
        {OVERLAY: overlay("m-00000000000a"), "dvc.lock": "md5: a\n"},
    )
    (repo.seed / "params.yaml").unlink()
    git(repo.seed, "commit", "-q", "--amend", "-a", "--no-edit")
    git(repo.seed, "push", "-q", str(repo.origin), "main")
    work = repo.clone("work5")
    with pytest.raises(RolloutError, match="changes nothing on main"):
        revert_merge(work, parse_event(event("degraded", repo.shas["pr3"]), "x"))
    assert git(work, "status", "--porcelain") == ""
    assert git(work, "branch", "--list", "revert/*") == ""
    assert git(work, "symbolic-ref", "--short", "HEAD") == "main"


def test_a_failed_push_names_the_remote_and_keeps_nothing(repo: Repo) -> None:
    with pytest.raises(RolloutError, match="push to nowhere failed"):
        revert_merge(
            repo.work, parse_event(event("degraded", repo.shas["pr3"]), "x"), push="nowhere"
        )
    assert git(repo.work, "branch", "--list", "revert/*") == ""
    assert git(repo.work, "symbolic-ref", "--short", "HEAD") == "main"


def test_an_existing_revert_branch_is_not_overwritten(repo: Repo) -> None:
    merge = repo.shas["pr3"]
    git(repo.work, "branch", f"revert/{merge[:12]}", "origin/main")
    with pytest.raises(RolloutError, match="exists already"):
        revert_merge(repo.work, parse_event(event("degraded", merge), "x"))


def test_the_push_token_reaches_git_through_a_helper_never_the_command_line(
    tmp_path: Path,
) -> None:
    token = "ghs_" + "x" * 36
    args = push_args("origin", "revert/abc", with_token=True)
    assert token not in " ".join(args) and f"${{{PUSH_TOKEN_ENV}}}" in " ".join(args)
    assert push_args("origin", "revert/abc", with_token=False) == [
        "push",
        "origin",
        "refs/heads/revert/abc:refs/heads/revert/abc",
    ]
    helper_args = args[: args.index("push")]
    proc = subprocess.run(
        ["git", *helper_args, "credential", "fill"],
        input="protocol=https\nhost=github.com\npath=your-org/gitops-text-classifier.git\n\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **ENV, PUSH_TOKEN_ENV: token, "GIT_TERMINAL_PROMPT": "0"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "username=x-access-token" in proc.stdout and f"password={token}" in proc.stdout
