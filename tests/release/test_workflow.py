"""The release workflow: main only, in environments, verifies what was pushed, builds nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "release.yml"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")
BUILDERS = ("bentoml build", "containerize", "docker/build-push-action", "podman build", "buildx")


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def commands(job: str) -> list[str]:
    return [s["run"] for s in workflow()["jobs"][job]["steps"] if "run" in s]


def test_runs_on_pushes_to_main_and_every_job_only_for_main() -> None:
    on = workflow()[True]  # YAML 1.1 reads the key `on` as True
    assert on["push"]["branches"] == ["main"]
    for name, job in workflow()["jobs"].items():
        assert job["if"] == "github.ref == 'refs/heads/main'", name  # workflow_dispatch too


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    lines = [ln.strip() for ln in WORKFLOW.read_text().splitlines() if "uses:" in ln]
    assert lines
    for line in lines:
        ref = line.split("uses:", 1)[1].strip()
        assert PINNED.match(ref), line


def test_least_privilege_and_environments() -> None:
    wf = workflow()
    assert wf["permissions"] == {"contents": "read"}
    jobs = wf["jobs"]
    assert jobs["promote"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert jobs["promote"]["environment"] == "dvc-release"
    assert jobs["verify"]["permissions"] == {
        "contents": "read",
        "packages": "read",
        "attestations": "read",
    }
    assert jobs["verify"]["environment"] == "release"


def test_outputs_are_promoted_review_to_release_then_every_pinned_image_is_verified() -> None:
    jobs = workflow()["jobs"]
    assert jobs["verify"]["needs"] == "promote"
    assert commands("promote")[-1] == "make promote"
    makefile = (REPO / "Makefile").read_text()
    promote = makefile[makefile.index("\npromote:") :].split("\n\n")[0]
    assert promote.splitlines()[2:] == [
        "\tdvc fetch -r review",
        "\ttextclf release verify -r review --dvc-files --no-workspace",
        "\tdvc push -r release",
    ]
    assert jobs["verify"]["strategy"]["matrix"]["variant"] == ["cpu", "gpu", "drift"]
    assert commands("verify") == [
        "make install",
        "make release-pull",
        "make release-images REV=HEAD",
        'make release-verify-image VARIANT="$VARIANT" REV=HEAD',
    ]
    verify_image = makefile[makefile.index("\nrelease-verify-image:") :].split("\n\n")[0]
    assert "--attested-by" in verify_image  # provenance, where GitHub sets GITHUB_REPOSITORY


def test_the_release_builds_nothing() -> None:
    text = WORKFLOW.read_text()
    for builder in BUILDERS:
        assert builder not in text, builder
    assert "dvc repro" not in text, "the release never retrains"


def test_actionlint() -> None:
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run(
        [str(bin_dir / "actionlint"), f"-shellcheck={bin_dir / 'shellcheck'}", str(WORKFLOW)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
