"""`release manifests` writes only the tag; `release check` and `dvc status` guard what ships."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from textclf.errors import ReleaseError
from textclf.release.lock import lock_problems
from textclf.release.overlays import set_pins
from textclf.release.tag import compute

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


def test_manifests_rewrites_only_the_new_tags(lock_repo: Path) -> None:
    before = (lock_repo / PRODUCTION).read_text()
    old = [e["newTag"] for e in yaml.safe_load(before)["images"]]
    result = release(lock_repo, "manifests", "--no-status")
    assert result.exit_code == 0, result.output
    tags = [compute(lock_repo, image=key, verify=False).tag for key in ("serving", "drift")]
    after = (lock_repo / PRODUCTION).read_text()
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert changed == [
        (f'    newTag: "{o}"', f'    newTag: "{t}"') for o, t in zip(old, tags, strict=True)
    ]
    assert after.endswith("\n") and len(after.splitlines()) == len(before.splitlines())
    again = release(lock_repo, "manifests", "--no-status")
    assert again.exit_code == 0 and "already name these tags" in again.stdout
    assert (lock_repo / PRODUCTION).read_text() == after


def test_a_new_tag_drops_the_digest_of_the_old_one(lock_repo: Path) -> None:
    """A digest pinned next to another tag would make pods pull the old image."""
    assert release(lock_repo, "manifests", "--no-status").exit_code == 0
    tag = compute(lock_repo, verify=False).tag
    digest = "sha256:" + "1" * 64
    set_pins(lock_repo, {(PRODUCTION, "textclf"): (tag, digest)})
    assert release(lock_repo, "manifests", "--no-status").exit_code == 0
    assert digest in (lock_repo / PRODUCTION).read_text(), "same tag: the digest stays"
    (lock_repo / "serve.yaml").write_text("max_batch_size: 8\n")
    assert release(lock_repo, "manifests", "--no-status").exit_code == 0
    text = (lock_repo / PRODUCTION).read_text()
    assert digest not in text and compute(lock_repo, verify=False).tag in text


def test_set_pins_keeps_comments_and_quotes(tmp_path: Path) -> None:
    rel = "kustomization.yaml"
    text = (
        "# head\nimages:  # the release\n  # written by make release-manifests\n"
        '  - name: textclf\n    newName: r/x  # the repository\n    newTag: "old"\npatches: []\n'
    )
    (tmp_path / rel).write_text(text)
    digest = "sha256:" + "0" * 64
    assert set_pins(tmp_path, {(rel, "textclf"): ("m-0123456789ab", digest)}) == [rel]
    assert (tmp_path / rel).read_text() == text.replace('"old"', '"m-0123456789ab"').replace(
        "patches", f'    digest: "{digest}"\npatches'
    )
    assert set_pins(tmp_path, {(rel, "textclf"): ("m-0123456789ab", digest)}) == []
    assert set_pins(tmp_path, {(rel, "textclf"): ("m-0123456789ab", None)}) == [rel]
    assert "digest" not in (tmp_path / rel).read_text()
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


@pytest.mark.parametrize(
    ("text", "value", "message"),
    [
        ("resources: []\n", ("m-1", None), "exactly one `images:` entry named 'textclf'"),
        (
            "images:\n  - name: textclf\n  - name: textclf\n",
            ("m-1", None),
            "exactly one `images:` entry named 'textclf'",
        ),
        ("images:\n  - name: textclf\n", ("m 1", None), "not a valid image tag"),
        ("images:\n  - name: textclf\n", ("m-1", "sha256:12"), "not a sha256 image digest"),
    ],
)
def test_set_pins_refuses_ambiguous_files_and_bad_values(
    tmp_path: Path, text: str, value: tuple[str, str | None], message: str
) -> None:
    (tmp_path / "k.yaml").write_text(text)
    with pytest.raises(ReleaseError, match=message):
        set_pins(tmp_path, {("k.yaml", "textclf"): value})
    assert (tmp_path / "k.yaml").read_text() == text


def test_image_names_the_overlay_repositories(lock_repo: Path) -> None:
    tag = compute(lock_repo, verify=False).tag
    drift_tag = compute(lock_repo, image="drift", verify=False).tag
    cpu = release(lock_repo, "image")
    gpu = release(lock_repo, "image", "--variant", "gpu")
    drift = release(lock_repo, "image", "--variant", "drift")
    assert cpu.stdout.strip() == f"ghcr.io/your-org/gitops-text-classifier:{tag}"
    assert gpu.stdout.strip() == f"ghcr.io/your-org/gitops-text-classifier-gpu:{tag}"
    assert drift.stdout.strip() == f"ghcr.io/your-org/gitops-text-classifier-drift:{drift_tag}"
    assert tag.startswith("m-") and drift_tag.startswith("d-")
    bad = release(lock_repo, "image", "--variant", "tpu")
    assert bad.exit_code == 2 and "cpu, gpu, drift" in bad.stderr


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
    assert "commit HEAD overlays name them" in committed.stdout
    # The commit check still fails when the commit itself is stale (negative control).
    commit_all(pipeline_repo, "model B without release-manifests")
    assert release(pipeline_repo, "check", "--rev", "HEAD").exit_code == 2
