"""`release manifests` writes only the tag; `release check` and `dvc status` guard what ships."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from textclf.errors import ReleaseError
from textclf.release import compute, lock_problems, set_overlay_tag

from .conftest import PRODUCTION, STAGING, commit_all, dvc, release


def overlay_tag(root: Path, overlay: str = PRODUCTION) -> str:
    return yaml.safe_load((root / overlay).read_text())["images"][0]["newTag"]


def test_staging_gets_the_same_tag_and_check_catches_a_stale_one(pipeline_repo: Path) -> None:
    wrote = release(pipeline_repo, "manifests")
    assert wrote.exit_code == 0, wrote.output
    tag = overlay_tag(pipeline_repo)
    assert overlay_tag(pipeline_repo, STAGING) == tag
    assert release(pipeline_repo, "check").exit_code == 0
    staging = pipeline_repo / STAGING
    staging.write_text(staging.read_text().replace(tag, "m-000000000000"))
    stale = release(pipeline_repo, "check")
    assert stale.exit_code == 2
    assert STAGING in stale.stderr and "make release-manifests" in stale.stderr


def test_manifests_rewrites_only_the_new_tag(lock_repo: Path) -> None:
    before, old = (lock_repo / PRODUCTION).read_text(), overlay_tag(lock_repo)
    result = release(lock_repo, "manifests", "--no-status")
    assert result.exit_code == 0, result.output
    tag = compute(lock_repo, verify=False).tag
    after = (lock_repo / PRODUCTION).read_text()
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert old != tag and changed == [(f'    newTag: "{old}"', f'    newTag: "{tag}"')]
    assert after.endswith("\n") and len(after.splitlines()) == len(before.splitlines())
    assert overlay_tag(lock_repo) == tag
    again = release(lock_repo, "manifests", "--no-status")
    assert again.exit_code == 0 and "already names" in again.stdout
    assert (lock_repo / PRODUCTION).read_text() == after


def test_set_overlay_tag_keeps_comments_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "kustomization.yaml"
    text = (
        "# head\nimages:  # the release\n  - name: textclf\n    newName: r/x\n"
        "    newTag: 'old'  # written by make release-manifests\npatches: []\n"
    )
    path.write_text(text)
    assert set_overlay_tag(path, "m-0123456789ab") is True
    assert path.read_text() == text.replace("'old'", "'m-0123456789ab'")
    assert set_overlay_tag(path, "m-0123456789ab") is False
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


@pytest.mark.parametrize(
    "text",
    [
        "resources: []\n",
        "images:\n  - name: a\n    newTag: x\n  - name: b\n    newTag: y\n",
        "images:\n  - name: a\n    newName: b\n",
    ],
)
def test_set_overlay_tag_refuses_ambiguous_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "kustomization.yaml"
    path.write_text(text)
    with pytest.raises(ReleaseError, match="exactly one `newTag:`"):
        set_overlay_tag(path, "m-0123456789ab")
    assert path.read_text() == text


def test_image_names_the_overlay_repositories(lock_repo: Path) -> None:
    tag = compute(lock_repo, verify=False).tag
    cpu = release(lock_repo, "image", "--no-status")
    gpu = release(lock_repo, "image", "--variant", "gpu", "--no-status")
    assert cpu.stdout.strip() == f"ghcr.io/your-org/gitops-text-classifier:{tag}"
    assert gpu.stdout.strip() == f"ghcr.io/your-org/gitops-text-classifier-gpu:{tag}"
    bad = release(lock_repo, "image", "--variant", "tpu", "--no-status")
    assert bad.exit_code == 2 and "cpu, gpu" in bad.stderr


def test_check_passes_after_manifests_and_fails_on_a_stale_tag(pipeline_repo: Path) -> None:
    old = overlay_tag(pipeline_repo)  # this repo's tag: not the stand-in pipeline's
    failed = release(pipeline_repo, "check")
    assert failed.exit_code == 2
    assert "make release-manifests" in failed.stderr
    assert old in failed.stderr
    assert release(pipeline_repo, "manifests").exit_code == 0
    passed = release(pipeline_repo, "check")
    assert passed.exit_code == 0, passed.output
    assert overlay_tag(pipeline_repo) in passed.stdout
    # A serving-code change without a new manifest: the committed tag is stale again.
    (pipeline_repo / "src/textclf/serving/service.py").write_text("VERSION = 2\n")
    stale = release(pipeline_repo, "check")
    assert stale.exit_code == 2 and "make release-manifests" in stale.stderr


def test_a_modified_shipped_output_is_refused(pipeline_repo: Path) -> None:
    old = overlay_tag(pipeline_repo)
    (pipeline_repo / "artifacts/onnx/model.onnx").write_text("hand-edited\n")
    for command in ("tag", "manifests", "check"):
        result = release(pipeline_repo, command)
        assert result.exit_code == 2, command
        assert "artifacts/onnx: modified" in result.stderr
        assert "dvc repro" in result.stderr and "dvc commit" in result.stderr
    assert overlay_tag(pipeline_repo) == old, "nothing written on failure"


def test_a_changed_param_without_repro_is_refused(pipeline_repo: Path) -> None:
    (pipeline_repo / "params.yaml").write_text("export:\n  seed: 2\n")
    result = release(pipeline_repo, "tag")
    assert result.exit_code == 2
    assert "export: changed deps params.yaml" in result.stderr
    assert "dvc repro" in result.stderr


def test_a_missing_shipped_output_says_dvc_pull(pipeline_repo: Path) -> None:
    shutil.rmtree(pipeline_repo / "artifacts/onnx")
    result = release(pipeline_repo, "tag")
    assert result.exit_code == 2
    assert "artifacts/onnx: deleted" in result.stderr and "dvc pull" in result.stderr


def test_outputs_that_do_not_ship_may_be_missing(pipeline_repo: Path) -> None:
    """The release job pulls only the shipped outputs: upstream ones are absent there."""
    assert release(pipeline_repo, "manifests").exit_code == 0
    shutil.rmtree(pipeline_repo / "artifacts/model")
    result = release(pipeline_repo, "check")
    assert result.exit_code == 0, result.output


def test_dvc_lock_must_agree_with_itself(pipeline_repo: Path) -> None:
    """With upstream outputs absent, dvc.lock's own md5s must still chain."""
    lock = yaml.safe_load((pipeline_repo / "dvc.lock").read_text())
    train_md5 = lock["stages"]["train"]["outs"][0]["md5"]
    lock["stages"]["export"]["deps"] = [
        {**d, "md5": "0" * 32 + ".dir"} if d["path"] == "artifacts/model" else d
        for d in lock["stages"]["export"]["deps"]
    ]
    (pipeline_repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    outs = compute(pipeline_repo, verify=False).lock_outs
    (problem,) = lock_problems(lock, outs)
    assert "export" in problem and train_md5 in problem
    shutil.rmtree(pipeline_repo / "artifacts/model")
    result = release(pipeline_repo, "check")
    assert result.exit_code == 2 and "but stage train wrote" in result.stderr


def test_dvc_commit_is_the_fix_for_intended_output_edits(pipeline_repo: Path) -> None:
    """After `dvc commit` the new output md5 is recorded, and the tag follows it."""
    before = compute(pipeline_repo).tag
    (pipeline_repo / "artifacts/onnx/textclf.json").write_text("{}\n")
    dvc(pipeline_repo, "commit", "-f", "-q")
    after = compute(pipeline_repo).tag
    assert after != before
    commit_all(pipeline_repo, "recommitted")
    assert compute(pipeline_repo, "HEAD").tag == after


def test_check_at_a_commit_ignores_a_retrained_workspace(pipeline_repo: Path) -> None:
    """A new machine retrains: the workspace's dvc.lock moves, the commit's release still holds."""
    assert release(pipeline_repo, "manifests").exit_code == 0
    commit_all(pipeline_repo, "release model A")
    params = pipeline_repo / "params.yaml"
    params.write_text(params.read_text().replace("seed: 1", "seed: 2"))
    dvc(pipeline_repo, "repro", "-q")  # other bytes, as a retrain on another machine gives

    stale = release(pipeline_repo, "check")
    assert stale.exit_code == 2 and "make release-manifests" in stale.stderr
    committed = release(pipeline_repo, "check", "--rev", "HEAD")
    assert committed.exit_code == 0, committed.output
    assert "commit HEAD names it" in committed.stdout
    # The commit check still fails when the commit itself is stale (negative control).
    commit_all(pipeline_repo, "model B without release-manifests")
    assert release(pipeline_repo, "check", "--rev", "HEAD").exit_code == 2
