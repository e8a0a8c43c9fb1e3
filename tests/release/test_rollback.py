"""Roll back end to end: merge model B, `git revert -m 1` the merge, and model A is back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import (
    PRODUCTION,
    Registry,
    commit_all,
    dvc,
    git,
    point_overlays_at,
    release,
)

SHIPPED = ("artifacts/onnx", "artifacts/drift")


def snapshot(root: Path) -> dict[str, bytes]:
    """Bytes of every shipped model file."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for out in SHIPPED
        for p in sorted((root / out).rglob("*"))
        if p.is_file()
    }


def released(root: Path, registry: Registry) -> str:
    """What the release workflow does after a merge: check, then push the missing images."""
    assert release(root, "check").exit_code == 0
    for variant in ("cpu", "gpu"):
        image = release(root, "image", "--variant", variant, "--no-status").stdout.strip()
        if release(root, "exists", "--variant", variant, "--no-status").exit_code == 1:
            registry.push(image)  # stands for `bentoml build` + `docker push`
    return release(root, "tag", "--no-status").stdout.strip()


def test_revert_of_a_model_merge_restores_model_tag_and_image(
    pipeline_repo: Path, registry: Registry
) -> None:
    root = pipeline_repo
    repository = point_overlays_at(root, registry)
    # main at model A: the pull request that introduced it wrote the tag into the overlay.
    assert release(root, "manifests").exit_code == 0
    commit_a = commit_all(root, "release model A")
    tag_a = released(root, registry)
    model_a = snapshot(root)
    assert registry.images == {
        f"your-org/gitops-text-classifier:{tag_a}",
        f"your-org/gitops-text-classifier-gpu:{tag_a}",
    }

    # A pull request proposes model B: new params, `dvc repro`, `make release-manifests`.
    git(root, "switch", "-q", "-c", "model-b")
    (root / "params.yaml").write_text("export:\n  seed: 2\n")
    dvc(root, "repro", "-q")
    assert release(root, "manifests").exit_code == 0
    commit_all(root, "model B")
    git(root, "switch", "-q", "main")
    git(root, "merge", "-q", "--no-ff", "-m", "Merge model B", "model-b")
    dvc(root, "checkout", "-q")
    tag_b = released(root, registry)
    assert tag_b != tag_a
    assert snapshot(root) != model_a
    assert f"{repository}:{tag_b}".endswith(
        release(root, "image", "--no-status").stdout.strip().split("/", 1)[1]
    )

    # Roll back: revert the merge commit.
    git(root, "revert", "-m", "1", "--no-edit", "HEAD")
    for path in ("dvc.lock", "params.yaml", PRODUCTION):
        assert git(root, "show", f"HEAD:{path}") == git(root, "show", f"{commit_a}:{path}"), path
    dvc(root, "checkout", "-q")
    assert snapshot(root) == model_a, "dvc checkout restored model A from the cache"

    assert release(root, "check").exit_code == 0
    assert release(root, "tag").stdout.strip() == tag_a
    assert release(root, "tag", "--rev", "HEAD").stdout.strip() == tag_a
    assert release(root, "tag", "--rev", "HEAD~1").stdout.strip() == tag_b
    pushed = set(registry.images)
    for variant in ("cpu", "gpu"):
        result = release(root, "exists", "--variant", variant)
        assert result.exit_code == 0, result.output
        assert f":{tag_a}: exists, nothing to build" in result.stdout
    assert registry.images == pushed, "the rollback built nothing"


@pytest.mark.slow
def test_rollback_works_from_the_remote_alone(
    pipeline_repo: Path, registry: Registry, tmp_path: Path
) -> None:
    """A fresh clone after the revert: `dvc pull` of the shipped outputs, then check passes."""
    root = pipeline_repo
    remote = tmp_path / "dvc-remote"
    dvc(root, "remote", "add", "-d", "local", str(remote))
    assert release(root, "manifests").exit_code == 0
    commit_a = commit_all(root, "release model A")
    dvc(root, "push", "-q")
    tag_a = release(root, "tag").stdout.strip()
    (root / "params.yaml").write_text("export:\n  seed: 2\n")
    dvc(root, "repro", "-q")
    assert release(root, "manifests").exit_code == 0
    commit_all(root, "model B")
    dvc(root, "push", "-q")
    git(root, "revert", "--no-edit", "HEAD")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    outputs = release(clone, "outputs").stdout.split()
    assert outputs == ["artifacts/drift", "artifacts/onnx"]
    dvc(clone, "pull", "-q", *outputs)
    assert not (clone / "artifacts/model").exists(), "only the shipped outputs were pulled"
    checked = release(clone, "check")
    assert checked.exit_code == 0, checked.output
    assert release(clone, "tag").stdout.strip() == tag_a
    assert git(clone, "show", f"HEAD:{PRODUCTION}") == git(root, "show", f"{commit_a}:{PRODUCTION}")
    shutil.rmtree(clone)
