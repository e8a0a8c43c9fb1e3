"""``textclf rollout``: a production rollout's result on its pull request, and the revert PR."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from textclf.console import ErrorReportingGroup

rollout_app = typer.Typer(
    cls=ErrorReportingGroup,
    help="What Argo CD reported about a production rollout (a repository_dispatch event sent "
    "by deploy/argocd/notifications.yaml), told back to the pull request that shipped it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EventOpt = Annotated[
    Path,
    typer.Option(
        "--event", help='the repository_dispatch event JSON (in a workflow: "$GITHUB_EVENT_PATH").'
    ),
]
RootOpt = Annotated[Path, typer.Option("--root", help="the repository's clone (full history).")]
MainOpt = Annotated[
    str,
    typer.Option("--main", help="the branch Argo CD deploys, whose first-parent chain is read."),
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--github-output",
        help='append key=value lines for later steps (in a workflow: "$GITHUB_OUTPUT").',
    ),
]


def _write_outputs(path: Path | None, values: dict[str, str]) -> None:
    """Append ``key=value`` lines (GitHub's step-output file format); values are one line."""
    if path is None:
        return
    lines = []
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            raise ValueError(f"step output {key} must be one line")
        lines.append(f"{key}={value}\n")
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(lines)


@rollout_app.command("comment")
def comment_cmd(
    event: EventOpt,
    out: Annotated[Path, typer.Option("--out", help="Markdown file to write the comment to.")],
    root: RootOpt = Path(),
    main: MainOpt = "origin/main",
    github_output: OutputOpt = None,
) -> None:
    """Write the comment for the pull request whose merge the rollout shipped.

    Maps the revision Argo CD rolled out to the first-parent merge commit on --main ("Merge pull
    request #N from ..." or a squash "... (#N)") and renders what the event holds: the sync
    operation, health and the Rollout's health message (a failed analysis metric and its limit),
    the images and the revisions. A revision that maps to no pull request exits 2, naming it.
    Step outputs: pr, merge, revision, event.
    """
    from textclf import io
    from textclf.lifecycle.rollout import comment_markdown, find_merge, load_event

    loaded = load_event(event)
    merge = find_merge(root, loaded.deployed_revision, main)
    io.write_text(out, comment_markdown(loaded, merge))
    _write_outputs(
        github_output,
        {
            "pr": str(merge.pr),
            "merge": merge.sha,
            "revision": loaded.deployed_revision,
            "event": loaded.action,
        },
    )
    typer.echo(f"wrote {out}: {loaded.action} of {loaded.deployed_revision} -> #{merge.pr}")


@rollout_app.command("revert")
def revert_cmd(
    event: EventOpt,
    body_out: Annotated[
        Path, typer.Option("--body-out", help="Markdown file to write the PR description to.")
    ],
    root: RootOpt = Path(),
    main: MainOpt = "origin/main",
    push: Annotated[
        str | None,
        typer.Option(
            "--push",
            help="push the branch to this remote; over HTTPS with the token in "
            "$TEXTCLF_PUSH_TOKEN when it is set (its value never reaches a command line).",
        ),
    ] = None,
    environment: Annotated[
        str,
        typer.Option("--environment", help="revert only rollouts of this environment label."),
    ] = "production",
    author_name: Annotated[str, typer.Option("--author-name", help="the commit's author.")] = (
        "textclf-rollback"
    ),
    author_email: Annotated[str, typer.Option("--author-email", help="their email.")] = (
        "textclf-rollback@users.noreply.github.com"
    ),
    github_output: OutputOpt = None,
) -> None:
    """Revert the merge a degraded production rollout shipped, on branch revert/<short sha>.

    Starts the branch at --main and commits `git revert -m 1 <merge>` (a squash commit: `git
    revert <sha>`), naming the merge and its pull request; writes the PR description. Refuses
    (exit 2, saying why) a completed rollout, another environment, a merge that is itself a
    rollback, one already reverted, and a revert that does not apply. Step outputs: branch,
    merge, pr, title.
    """
    from textclf import io
    from textclf.lifecycle.rollout import PUSH_TOKEN_ENV, load_event, revert_merge

    result = revert_merge(
        root,
        load_event(event),
        main=main,
        environment=environment,
        push=push,
        with_token=bool(os.environ.get(PUSH_TOKEN_ENV)),
        author=(author_name, author_email),
    )
    io.write_text(body_out, result.body)
    _write_outputs(
        github_output,
        {
            "branch": result.branch,
            "merge": result.merge.sha,
            "pr": str(result.merge.pr),
            "title": result.title,
        },
    )
    pushed = f", pushed to {push}" if push else ""
    typer.echo(f"{result.branch}: {result.commit} reverts #{result.merge.pr}{pushed}")
