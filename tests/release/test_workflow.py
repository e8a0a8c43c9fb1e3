"""The release workflow: pinned actions, least privilege, and the order that makes it safe."""

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


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps() -> list[dict[str, Any]]:
    return workflow()["jobs"]["image"]["steps"]


def index(predicate: str) -> int:
    for i, step in enumerate(steps()):
        if predicate in step.get("run", "") or predicate in step.get("uses", ""):
            return i
    raise AssertionError(f"no step with {predicate!r}")


def test_runs_on_pushes_to_main() -> None:
    on = workflow()[True]  # YAML 1.1 reads the key `on` as True
    assert on["push"]["branches"] == ["main"]


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    lines = [ln.strip() for ln in WORKFLOW.read_text().splitlines() if "uses:" in ln]
    assert lines
    for line in lines:
        ref = line.split("uses:", 1)[1].strip()
        assert PINNED.match(ref), line


def test_write_permissions_only_on_the_image_job() -> None:
    wf = workflow()
    assert wf["permissions"] == {"contents": "read"}
    assert wf["jobs"]["image"]["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    assert wf["jobs"]["promote"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert wf["jobs"]["image"]["environment"] == "release"


def test_outputs_are_promoted_review_to_release_before_any_image_is_built() -> None:
    jobs = workflow()["jobs"]
    assert jobs["image"]["needs"] == "promote"
    assert [s["run"] for s in jobs["promote"]["steps"] if "run" in s][-1] == "make promote"
    assert jobs["promote"]["environment"] == "dvc-release"
    makefile = (REPO / "Makefile").read_text()
    promote = makefile[makefile.index("\npromote:") :].split("\n\n")[0]
    assert promote.splitlines()[2:] == [
        "\tdvc fetch -r review",
        "\ttextclf release verify -r review --dvc-files --no-workspace",
        "\tdvc push -r release",
    ]
    pull = makefile[makefile.index("\nrelease-pull:") :].split("\n\n")[0]
    assert "dvc pull -r release $$(textclf release outputs)" in pull
    assert "textclf release verify -r release $$(textclf release outputs)" in pull


def test_order_pull_check_skip_build_push_attest() -> None:
    pull = index("make release-pull")
    check = index("make release-check")
    exists = index("textclf release exists")
    build = index("bentoml build")
    push = index("docker/build-push-action@")
    attest = index("actions/attest-build-provenance@")
    assert pull < check < exists < build < push < attest
    assert "dvc repro" not in WORKFLOW.read_text(), "the release never retrains"
    for step in steps()[exists + 1 :]:
        if step.get("name") != "Summary":
            assert step["if"].startswith("steps.exists.outputs.build == 'true'"), step


def test_both_images_are_built() -> None:
    matrix = workflow()["jobs"]["image"]["strategy"]["matrix"]["include"]
    assert {(m["variant"], m["bentofile"]) for m in matrix} == {
        ("cpu", "bentofile.yaml"),
        ("gpu", "bentofile.gpu.yaml"),
    }
    for entry in matrix:
        assert (REPO / entry["bentofile"]).is_file()


def test_actionlint() -> None:
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run(
        [str(bin_dir / "actionlint"), f"-shellcheck={bin_dir / 'shellcheck'}", str(WORKFLOW)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
