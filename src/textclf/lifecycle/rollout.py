"""A production rollout's result, from Argo CD back to the pull request that shipped it.

Argo CD Notifications (``deploy/argocd/notifications.yaml``) sends a ``repository_dispatch``
event when a production sync finished healthy (``rollout-completed``) or the application
degraded (``rollout-degraded``: Argo Rollouts aborted the canary). The event holds what the
notification template could read from the Application's status: the synced revision, health,
the sync operation, the images and the Rollout's health message (the abort reason, e.g. a failed
analysis metric and its limit). This module reads that event, maps the revision to its merge
commit on main and pull request, writes the comment for it, and makes the revert.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from textclf.errors import TextclfError
from textclf.gitcmd import run_git
from textclf.report.markdown import Table, code, esc

COMPLETED = "rollout-completed"
DEGRADED = "rollout-degraded"
#: The repository_dispatch event types the notification template sends.
EVENT_TYPES = (COMPLETED, DEGRADED)
#: The first line of every comment, so a reader (or a script) can tell ours apart.
MARKER = "<!-- textclf-rollout -->"
#: The environment variable holding the token a push over HTTPS authenticates with; only its
#: name reaches git's command line (a credential helper reads it), never its value.
PUSH_TOKEN_ENV = "TEXTCLF_PUSH_TOKEN"
TEMPLATE_FIX = (
    "Fix: send it with the Argo CD notification template `rollout-result` in "
    "deploy/argocd/notifications.yaml (docs/release.md, 'Rollout results and automatic revert')."
)


class RolloutError(TextclfError):
    """The event is malformed, or its revision maps to no pull request, or the revert failed."""


# --------------------------------------------------------------------------- the event


def _none_as_empty(value: Any) -> Any:
    """A JSON ``null`` (the template's ``toJson`` of a field the status lacks) as empty."""
    return [] if value is None else value


def _none_as_model(value: Any) -> Any:
    return {} if value is None else value


class _Part(BaseModel):
    """A part of the payload: exactly the keys the template writes (an unknown one fails)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Health(_Part):
    """An Argo CD health: ``status`` (Healthy, Progressing, Suspended, Degraded, ...), message."""

    status: str | None = None
    message: str | None = None


class Operation(_Part):
    """The Application's last sync operation (``.status.operationState``)."""

    phase: str | None = None
    message: str | None = None
    sync_revision: str | None = Field(None, alias="syncRevision")
    finished_at: str | None = Field(None, alias="finishedAt")


class ResourceState(_Part):
    """A Rollout among the Application's resources (``.status.resources``)."""

    name: str
    namespace: str | None = None
    sync_status: str | None = Field(None, alias="status")
    health: Annotated[Health, BeforeValidator(_none_as_model)] = Health()


class AppRef(_Part):
    """Which Application: its name and namespace, environment label and destination."""

    name: str
    namespace: str | None = None
    environment: str | None = None
    destination: str | None = None


class Payload(_Part):
    """``client_payload``: what the template read from the Application (at most 10 keys)."""

    app: AppRef
    revision: str
    health: Annotated[Health, BeforeValidator(_none_as_model)] = Health()
    operation: Annotated[Operation, BeforeValidator(_none_as_model)] = Operation()
    images: Annotated[list[str], BeforeValidator(_none_as_empty)] = []
    rollouts: Annotated[list[ResourceState], BeforeValidator(_none_as_empty)] = []
    repo_url: str | None = Field(None, alias="repoURL")
    argocd_url: str | None = Field(None, alias="argocdURL")

    @field_validator("revision")
    @classmethod
    def _is_sha(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{7,64}", value):
            raise ValueError(f"{value!r} is not a commit sha (Argo CD's .status.sync.revision)")
        return value.lower()


class RolloutEvent(BaseModel):
    """A ``repository_dispatch`` event as GitHub hands it to the workflow."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # repository, sender, installation

    action: Literal["rollout-completed", "rollout-degraded"]
    client_payload: Payload

    @property
    def degraded(self) -> bool:
        """True for ``rollout-degraded`` (the canary aborted or the application degraded)."""
        return self.action == DEGRADED

    @property
    def deployed_revision(self) -> str:
        """The commit whose manifests started this rollout.

        That is the last sync operation's revision: a later merge that changed no manifest moves
        ``.status.sync.revision`` on but syncs nothing, and is not what rolled out. Without an
        operation in the event, the sync revision.
        """
        synced = self.client_payload.operation.sync_revision
        if synced and re.fullmatch(r"[0-9a-fA-F]{7,64}", synced):
            return synced.lower()
        return self.client_payload.revision


def _where(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<top level>'}: {e['msg']}"
        for e in err.errors()[:6]
    )


def parse_event(raw: Any, source: str) -> RolloutEvent:
    """Validate a loaded event; a :class:`RolloutError` names each missing or bad field."""
    try:
        return RolloutEvent.model_validate(raw)
    except ValidationError as err:
        raise RolloutError(
            f"{source} is not a rollout event of types {', '.join(EVENT_TYPES)} ({_where(err)}). "
            f"{TEMPLATE_FIX}"
        ) from None


def load_event(path: Path) -> RolloutEvent:
    """The event at ``path`` (``$GITHUB_EVENT_PATH`` in the workflow)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RolloutError(
            f"{path}: no such event file. Fix: pass the workflow's event, "
            '--event "$GITHUB_EVENT_PATH".'
        ) from None
    except json.JSONDecodeError as err:
        raise RolloutError(f"{path} is not JSON ({err}). {TEMPLATE_FIX}") from None
    return parse_event(raw, str(path))


# --------------------------------------------------------------------------- revision -> PR

_MERGE_SUBJECT = re.compile(r"^Merge pull request #(\d+) from (\S+)")
_SQUASH_SUBJECT = re.compile(r"\s*\(#(\d+)\)\s*$")
_REVERTS = re.compile(r"This reverts commit ([0-9a-f]{7,64})")


@dataclass(frozen=True)
class Merge:
    """The commit on main that brought a revision in, and its pull request."""

    sha: str
    pr: int
    subject: str
    title: str
    parents: tuple[str, ...]
    body: str = ""

    @property
    def short(self) -> str:
        """The first 12 hex digits (the revert branch is ``revert/<short>``)."""
        return self.sha[:12]

    @property
    def is_merge_commit(self) -> bool:
        """A merge commit (two parents, reverted with ``-m 1``); else a squash commit."""
        return len(self.parents) > 1

    @property
    def is_rollback(self) -> bool:
        """This pull request is itself a revert (reverting it would bring back a bad rollout)."""
        return bool(
            re.search(r" from \S+/revert/", self.subject)
            or self.title.startswith("Revert ")
            or _REVERTS.search(self.body)
        )


def _git_out(root: Path, *args: str) -> str | None:
    """Stripped stdout of ``git args``, or None when git fails."""
    proc = run_git(root, *args, why="rollout results are mapped to commits with git")
    return proc.stdout.decode("utf-8", "replace").strip() if proc.returncode == 0 else None


def _resolve(root: Path, rev: str) -> str | None:
    return _git_out(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")


def _first_parent_commit(root: Path, sha: str, main_sha: str) -> str:
    """The oldest commit of main's first-parent chain that contains ``sha``."""
    chain = (_git_out(root, "rev-list", "--first-parent", main_sha) or "").split()
    if sha in chain:
        return sha
    descendants = set(
        (_git_out(root, "rev-list", "--ancestry-path", f"{sha}..{main_sha}") or "").split()
    )
    found = main_sha
    for commit in chain:  # newest first: the last one that descends from sha
        if commit not in descendants:
            break
        found = commit
    return found


def _parse_merge(sha: str, parents: tuple[str, ...], subject: str, body: str) -> Merge | None:
    merged = _MERGE_SUBJECT.match(subject)
    if merged:
        title = next((ln.strip() for ln in body.splitlines() if ln.strip()), "")
        return Merge(sha, int(merged.group(1)), subject, title or subject, parents, body)
    squashed = _SQUASH_SUBJECT.search(subject)
    if squashed:
        title = subject[: squashed.start()].strip()
        return Merge(sha, int(squashed.group(1)), subject, title, parents, body)
    return None


def find_merge(root: Path, revision: str, main: str = "origin/main") -> Merge:
    """The first-parent commit on ``main`` that merged ``revision``, and its pull request.

    It is the revision itself when Argo CD synced main's merge commit (the usual case), else the
    first merge on main's first-parent chain that contains it. GitHub writes "Merge pull request
    #N from ..." as a merge commit's subject and "... (#N)" as a squash commit's.
    """
    main_sha = _resolve(root, main)
    if main_sha is None:
        raise RolloutError(
            f"{main} is not a branch of the clone at {root}. Fix: check out the repository with "
            "its history (actions/checkout with fetch-depth: 0), or pass --main."
        )
    sha = _resolve(root, revision)
    if sha is None:
        raise RolloutError(
            f"revision {revision} is not a commit of the clone at {root}. Fix: fetch the full "
            "history (actions/checkout with fetch-depth: 0); if it is fetched, the revision is "
            "not from this repository: the Application's repoURL must name it."
        )
    ancestor = run_git(root, "merge-base", "--is-ancestor", sha, main_sha, why="rollout mapping")
    if ancestor.returncode != 0:
        raise RolloutError(
            f"revision {sha} is not on {main}: Argo CD synced a commit that main does not "
            "contain. Fix: the production Application's targetRevision must be main; comment "
            "on (or revert) that change by hand."
        )
    merge_sha = _first_parent_commit(root, sha, main_sha)
    info = _git_out(root, "show", "-s", "--format=%P%x00%s%x00%b", merge_sha) or "\0\0"
    parents, subject, body = info.split("\0", 2)
    merge = _parse_merge(merge_sha, tuple(parents.split()), subject, body)
    if merge is None:
        via = "" if merge_sha == sha else f" through commit {merge_sha}"
        raise RolloutError(
            f"revision {sha} is on {main}{via} ({subject!r}), which is not a pull-request merge: "
            "GitHub writes 'Merge pull request #N from ...' for a merge commit and '... (#N)' "
            "for a squash. Fix: merge pull requests with a merge commit or a squash (a rebase "
            "merge keeps no number); comment on (or revert) that commit by hand."
        )
    return merge


# --------------------------------------------------------------------------- Markdown

_ANALYSIS = re.compile(
    r'Metric "(?P<metric>[^"]+)" assessed (?P<phase>\w+) due to '
    r"(?P<what>\w+) \((?P<count>\d+)\) > (?P<limit_name>\w+) \((?P<limit>\d+)\)"
)


_URL = re.compile(r"https://[A-Za-z0-9.-]+(:\d+)?(/[A-Za-z0-9._~/-]*)?")
_URL_PART = re.compile(r"[a-z0-9.-]+")


def _health(health: Health) -> str:
    if not health.status:
        return "not recorded"
    message = f": {esc(health.message, 600)}" if health.message else ""
    return f"**{esc(health.status)}**{message}"


def _rev(sha: str | None) -> str:
    return code(sha) if sha else "not recorded"


def state_table(event: RolloutEvent) -> list[str]:
    """What the event holds, as a two-column table (the comment's and the revert PR's)."""
    p = event.client_payload
    app = esc(p.app.name)
    if p.argocd_url and _URL.fullmatch(p.argocd_url) and _URL_PART.fullmatch(p.app.name):
        app = f"[{app}]({p.argocd_url.rstrip('/')}/applications/{p.app.name})"
    where = ", ".join(
        f"{label} {esc(value)}"
        for label, value in (
            ("environment", p.app.environment),
            ("namespace", p.app.destination),
        )
        if value
    )
    op = p.operation
    operation = esc(op.phase) if op.phase else "not recorded"
    if op.message:
        operation += f": {esc(op.message, 300)}"
    if op.finished_at:
        operation += f" (finished {esc(op.finished_at)})"
    table = Table(["", ""], align="ll")
    table.rows = [
        ["Event", code(event.action)],
        ["Application", app + (f" ({where})" if where else "")],
        ["Revision synced", _rev(p.revision)],
        ["Revision the last sync applied", _rev(op.sync_revision)],
        ["Sync operation", operation],
        ["Application health", _health(p.health)],
        ["Images", "<br>".join(code(i) for i in p.images) or "not recorded"],
        ["Source", esc(p.repo_url) if p.repo_url else "not recorded"],
    ]
    table.rows += [[f"Rollout {code(r.name)}", _health(r.health)] for r in p.rollouts]
    return table.render()


def analysis_table(event: RolloutEvent) -> list[str]:
    """Each failed analysis metric the Rollouts' health messages name, with its limit."""
    table = Table(["analysis metric", "assessed", "measurements", "limit"], align="llrr")
    for rollout in event.client_payload.rollouts:
        for found in _ANALYSIS.finditer(rollout.health.message or ""):
            table.rows.append(
                [
                    code(found["metric"]),
                    esc(found["phase"]),
                    f"{found['count']} {esc(found['what'])}",
                    f"{esc(found['limit_name'])} {found['limit']}",
                ]
            )
    return table.render()


def _no_rollout_health(event: RolloutEvent) -> list[str]:
    if any(r.health.status for r in event.client_payload.rollouts):
        return []
    return [
        "",
        "The Application's status holds no health for the Rollout, so the abort reason is not "
        "here: Argo CD 3 keeps resource health out of the Application unless "
        '`controller.resource.health.persist` is `"true"` in `argocd-cmd-params-cm`.',
    ]


def _watch(event: RolloutEvent) -> str:
    namespace = event.client_payload.app.destination or "<namespace>"
    names = [r.name for r in event.client_payload.rollouts] or ["<rollout>"]
    return code(f"kubectl argo rollouts get rollout {names[0]} -n {namespace}")


def comment_markdown(event: RolloutEvent, merge: Merge) -> str:
    """The comment on the merged pull request: what the rollout of its merge did."""
    p = event.client_payload
    if event.degraded:
        heading = f"## ❌ Production rollout degraded: {esc(p.app.name)}"
        if merge.is_rollback:
            then = (
                "This pull request is itself a rollback, so nothing is reverted automatically: "
                "look at the cluster."
            )
        else:
            then = (
                f"The rollout workflow's revert job opens a pull request that reverts "
                f"{code(merge.sha)} (branch {code('revert/' + merge.short)}), or says in its log "
                "why not."
            )
    else:
        heading = f"## ✅ Production rollout completed: {esc(p.app.name)}"
        then = "Synced and healthy: every canary step and analysis passed."
    kind = "merge commit" if merge.is_merge_commit else "squash commit"
    if event.deployed_revision == merge.sha:
        what = f"Argo CD rolled out {code(merge.sha)}, this pull request's {kind}."
    else:
        what = (
            f"Argo CD rolled out {code(event.deployed_revision)}, which main took in with this "
            f"pull request's {kind} {code(merge.sha)}."
        )
    lines = [
        MARKER,
        heading,
        "",
        f"{what} {then}",
        "",
        *state_table(event),
    ]
    analysis = analysis_table(event)
    if analysis:
        lines += ["", *analysis]
    if event.degraded:
        lines += _no_rollout_health(event)
    lines += [
        "",
        "<sub>Read by Argo CD's notification controller from the Application's status when it "
        "sent the event: it can lag the cluster by a few seconds, and the measured values are "
        f"in the AnalysisRuns ({_watch(event)}).</sub>",
        "",
    ]
    return "\n".join(lines)


def revert_title(merge: Merge) -> str:
    """The revert pull request's title (one line)."""
    title = " ".join(f'Revert "{merge.title}" (#{merge.pr}): production rollout degraded'.split())
    return title[:250]


def revert_body(event: RolloutEvent, merge: Merge, branch: str) -> str:
    """The revert pull request's description: why, what it restores, what to do."""
    how = f"git revert -m 1 {merge.sha}" if merge.is_merge_commit else f"git revert {merge.sha}"
    lines = [
        MARKER,
        f"Reverts #{merge.pr} ({code(merge.sha)}): its production rollout degraded (an aborted "
        "canary: Argo Rollouts sent the traffic back to the stable pods).",
        "",
        *state_table(event),
    ]
    analysis = analysis_table(event)
    if analysis:
        lines += ["", *analysis]
    lines += _no_rollout_health(event)
    lines += [
        "",
        f"This branch ({code(branch)}) is {code(how)} on main: `dvc.lock`, the params and the "
        "overlays' image tag@digest pins go back to what main had before the merge. The release "
        "manifests are already right: an image tag is a content address of the bytes it ships, "
        "so the restored pins name the images that were reviewed, pushed and ran before. The "
        "release verifies them and builds nothing, and the Rollout returns to them without the "
        "canary steps (`rollbackWindow`).",
        "",
        "Merge this to roll production back; close it if the degradation had another cause. "
        f"To look locally: `git fetch origin {branch}`, `git switch {branch}`, `dvc checkout`. "
        f"The canary's measurements: {_watch(event)}.",
        "",
    ]
    return "\n".join(lines)


def revert_message(event: RolloutEvent, merge: Merge) -> str:
    """The revert commit's message: names the merge, its pull request and the reason."""
    reasons = [
        f"{r.name}: {r.health.status}: {r.health.message}"
        for r in event.client_payload.rollouts
        if r.health.status
    ] or [f"{event.client_payload.app.name}: {event.client_payload.health.status}"]
    parent = f", reversing changes made to {merge.parents[0]}" if merge.parents else ""
    return "\n".join(
        [
            f'Revert "{merge.title}" (#{merge.pr})',
            "",
            f"The production rollout of {event.deployed_revision} degraded:",
            *(f"  {' '.join(r.split())}" for r in reasons),
            "",
            f"This reverts commit {merge.sha}{parent},",
            f"the merge of pull request #{merge.pr}.",
            "",
        ]
    )


# --------------------------------------------------------------------------- the revert


@dataclass(frozen=True)
class Revert:
    """The revert branch and commit, and the pull request to open for them."""

    branch: str
    commit: str
    merge: Merge
    title: str
    body: str


def _credential_helper() -> str:
    """A git credential helper that answers with the token from :data:`PUSH_TOKEN_ENV`."""
    return (
        '!f() { test "$1" = get || return 0; echo username=x-access-token; '
        f'echo "password=${{{PUSH_TOKEN_ENV}}}"; }}; f'
    )


def push_args(remote: str, branch: str, *, with_token: bool) -> list[str]:
    """``git`` arguments that push ``branch``; with a token, only its variable's name is in them."""
    auth = ["-c", "credential.helper=", "-c", f"credential.helper={_credential_helper()}"]
    return [
        *(auth if with_token else []),
        "push",
        remote,
        f"refs/heads/{branch}:refs/heads/{branch}",
    ]


def already_reverted(root: Path, merge: Merge, main_sha: str) -> str | None:
    """The commit on main whose message says it reverts ``merge``, if any."""
    found = _git_out(
        root, "log", "--format=%H", "-F", f"--grep=This reverts commit {merge.sha}", main_sha
    )
    return found.split()[0] if found else None


def _run(root: Path, *args: str, what: str, stdin: bytes | None = None) -> str:
    proc = run_git(root, *args, why=what, stdin=stdin, timeout=120)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()
        raise RolloutError(f"{what} failed: {' / '.join(detail[-4:]) or 'no output'}")
    return proc.stdout.decode("utf-8", "replace").strip()


def _check_revertible(
    root: Path, event: RolloutEvent, merge: Merge, main_sha: str, env: str
) -> None:
    if not event.degraded:
        raise RolloutError(f"{event.action}: only a degraded rollout is reverted.")
    if event.client_payload.app.environment != env:
        raise RolloutError(
            f"the event is about {event.client_payload.app.name} (environment "
            f"{event.client_payload.app.environment!r}), not {env!r}: not reverting. Fix: "
            "subscribe only the production Application to on-rollout-degraded, or pass "
            "--environment."
        )
    if merge.is_rollback:
        raise RolloutError(
            f"#{merge.pr} ({merge.sha}) is itself a rollback: reverting it would bring back "
            "what was rolled back. Fix: look at the cluster and decide by hand."
        )
    reverted = already_reverted(root, merge, main_sha)
    if reverted:
        raise RolloutError(f"#{merge.pr} ({merge.sha}) is already reverted on main by {reverted}.")
    dirty = _run(root, "status", "--porcelain", "--untracked-files=no", what="git status")
    if dirty:
        raise RolloutError(
            f"the checkout at {root} has uncommitted changes ({dirty.splitlines()[0]} ...). "
            "Fix: commit or stash them first."
        )


def _make_revert_commit(root: Path, merge: Merge, message: str, author: tuple[str, str]) -> str:
    """``git revert`` of ``merge`` without committing, then one commit by ``author`` (also the
    committer, unless git's environment names one)."""
    identity = ["-c", f"user.name={author[0]}", "-c", f"user.email={author[1]}"]
    mainline = ["-m", "1"] if merge.is_merge_commit else []
    proc = run_git(root, "revert", "--no-commit", *mainline, merge.sha, why="git revert")
    if proc.returncode != 0:
        conflicts = _git_out(root, "diff", "--name-only", "--diff-filter=U") or ""
        run_git(root, "revert", "--abort", why="git revert --abort")
        raise RolloutError(
            f"git revert of {merge.sha} (#{merge.pr}) does not apply to main"
            + (f": conflicts in {', '.join(conflicts.split())}" if conflicts else "")
            + ". Fix: main changed the same files since; revert by hand and resolve them."
        )
    if run_git(root, "diff", "--cached", "--quiet", why="git diff").returncode == 0:
        run_git(root, "revert", "--abort", why="git revert --abort")
        raise RolloutError(f"reverting {merge.sha} (#{merge.pr}) changes nothing on main.")
    _run(
        root,
        *identity,
        "commit",
        "-q",
        "--no-verify",
        f"--author={author[0]} <{author[1]}>",
        "-F",
        "-",
        what="git commit",
        stdin=message.encode("utf-8"),
    )
    return _run(root, "rev-parse", "HEAD", what="git rev-parse")


def revert_merge(
    root: Path,
    event: RolloutEvent,
    *,
    main: str = "origin/main",
    environment: str = "production",
    push: str | None = None,
    with_token: bool = False,
    author: tuple[str, str] = ("textclf-rollback", "textclf-rollback@users.noreply.github.com"),
) -> Revert:
    """Revert the merge a degraded production rollout shipped, on ``revert/<short sha>``.

    The branch starts at ``main``; the commit is ``git revert -m 1 <merge>`` (``git revert``
    for a squash commit), its message names the merge and the pull request. With ``push``, the
    branch is pushed to that remote (``with_token``: authenticated by :data:`PUSH_TOKEN_ENV`).
    On any failure the checkout is put back on the branch it was on and the branch deleted.
    """
    merge = find_merge(root, event.deployed_revision, main)
    main_sha = _resolve(root, main) or main
    _check_revertible(root, event, merge, main_sha, environment)
    branch = f"revert/{merge.short}"
    if _resolve(root, f"refs/heads/{branch}"):
        raise RolloutError(f"branch {branch} exists already. Fix: delete it, or open its PR.")
    start = _git_out(root, "symbolic-ref", "--short", "-q", "HEAD")
    start_args = [start] if start else ["--detach", _run(root, "rev-parse", "HEAD", what="HEAD")]
    _run(root, "switch", "-q", "-c", branch, main_sha, what=f"git switch -c {branch}")
    try:
        commit = _make_revert_commit(root, merge, revert_message(event, merge), author)
        if push:
            _run(root, *push_args(push, branch, with_token=with_token), what=f"push to {push}")
    except RolloutError:
        run_git(root, "switch", "-q", "-f", *start_args, why="git switch back")
        run_git(root, "branch", "-q", "-D", branch, why="git branch -D")
        raise
    return Revert(branch, commit, merge, revert_title(merge), revert_body(event, merge, branch))
