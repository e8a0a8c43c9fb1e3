"""The release tag: a pure function of the shipped outputs in dvc.lock and the shipped files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from textclf.errors import ReleaseError
from textclf.release.git import Tree
from textclf.release.tag import compute, release_inputs
from textclf_dev.imports import closure as closure_of

from .conftest import FAKE_LOCK, REPO, commit_all, git, release, shipped_sources, write_yaml

SERVICE = "textclf.serving.service"

TAG = re.compile(r"m-[0-9a-f]{12}")


def tag_of(root: Path, rev: str | None = None, image: str = "serving") -> str:
    return compute(root, rev, image=image, verify=False).tag


def set_out_md5(root: Path, out: str, md5: str) -> None:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    for stage in lock["stages"].values():
        for entry in stage.get("outs", []):
            if entry["path"] == out:
                entry["md5"] = md5
    write_yaml(root / "dvc.lock", lock)


def test_tag_is_a_valid_oci_tag_and_deterministic(lock_repo: Path, tmp_path: Path) -> None:
    """Same commit, same tag: twice here, and in a fresh clone."""
    tag = tag_of(lock_repo)
    assert TAG.fullmatch(tag)
    assert tag_of(lock_repo) == tag
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(lock_repo), str(clone))
    assert tag_of(clone) == tag
    assert tag_of(clone, "HEAD") == tag


def test_the_bentofiles_ship_exactly_the_serving_closure() -> None:
    """What `textclf.serving.service` imports, read from the code: no more, no less."""
    closure = {p.relative_to(REPO).as_posix() for p in closure_of(REPO / "src", SERVICE)}
    for bentofile in ("bentofile.yaml", "bentofile.gpu.yaml"):
        spec = yaml.safe_load((REPO / bentofile).read_text(encoding="utf-8"))
        shipped = {p for p in spec["include"] if p.startswith("src/")}
        assert shipped == closure, (
            f"{bentofile}: add {sorted(closure - shipped)}, drop {sorted(shipped - closure)}"
        )


def test_the_closure_check_sees_a_new_import(tmp_path: Path) -> None:
    """Negative control: a lazy import inside a function joins the closure."""
    pkg = tmp_path / "textclf"
    (pkg / "serving").mkdir(parents=True)
    for rel in ("__init__.py", "serving/__init__.py", "report.py", "extra.py"):
        (pkg / rel).write_text("")
    (pkg / "serving" / "service.py").write_text(
        "from textclf import report\n\ndef f():\n    from ..extra import x\n"
    )
    found = {p.relative_to(tmp_path).as_posix() for p in closure_of(tmp_path, SERVICE)}
    assert found == {
        "textclf/__init__.py",
        "textclf/serving/__init__.py",
        "textclf/serving/service.py",
        "textclf/report.py",
        "textclf/extra.py",
    }


def test_shipped_outputs_and_files(lock_repo: Path) -> None:
    """What the bentofiles ship, split into dvc.lock outputs and git files."""
    inputs = release_inputs(Tree(lock_repo))
    assert sorted(inputs.outs) == ["artifacts/onnx"]
    assert sorted(inputs.files) == sorted(
        [
            "bento/Dockerfile.j2",
            "bentofile.gpu.yaml",
            "bentofile.yaml",
            "requirements/serving-gpu.txt",
            "requirements/serving.txt",
            "serve.yaml",
            *shipped_sources(),
        ]
    )
    result = release(lock_repo, "tag", "--explain", "--no-status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "textclf-release-tag/1"
    assert f"out artifacts/onnx {'2' * 32}.dir" in lines
    assert lines[-1] == tag_of(lock_repo)
    outputs = release(lock_repo, "outputs")
    assert outputs.stdout.split() == ["artifacts/drift", "artifacts/onnx"]  # both images'


def test_the_drift_image_has_its_own_tag(lock_repo: Path) -> None:
    """Drift code or its reference profile move the drift tag, never the serving one."""
    serving, drift = tag_of(lock_repo), tag_of(lock_repo, image="drift")
    assert drift.startswith("d-")
    assert sorted(compute(lock_repo, image="drift", verify=False).outs) == ["artifacts/drift"]
    (lock_repo / "src/textclf/monitoring/drift.py").write_text("CHANGED = 1\n")
    assert tag_of(lock_repo) == serving
    assert tag_of(lock_repo, image="drift") != drift
    set_out_md5(lock_repo, "artifacts/drift", "f" * 32 + ".dir")
    assert tag_of(lock_repo) == serving
    drift_now = tag_of(lock_repo, image="drift")
    (lock_repo / "src/textclf/serving/service.py").write_text("VERSION = 3\n")
    assert tag_of(lock_repo) != serving and tag_of(lock_repo, image="drift") == drift_now


def test_the_drift_definition_ships_exactly_the_drift_check_closure() -> None:
    closure = {
        p.relative_to(REPO).as_posix() for p in closure_of(REPO / "src", "textclf.monitoring.check")
    }
    assert set(shipped_sources("images/drift.yaml")) == closure


def test_a_shipped_output_md5_changes_the_tag(lock_repo: Path) -> None:
    before = tag_of(lock_repo)
    set_out_md5(lock_repo, "artifacts/onnx", "f" * 32 + ".dir")
    assert tag_of(lock_repo) != before


@pytest.mark.parametrize("out", ["artifacts/model", "artifacts/drift"])
def test_an_output_the_bento_does_not_ship_keeps_the_tag(lock_repo: Path, out: str) -> None:
    before = tag_of(lock_repo)
    set_out_md5(lock_repo, out, "f" * 32 + ".dir")
    assert tag_of(lock_repo) == before


@pytest.mark.parametrize(
    "path",
    [
        "src/textclf/serving/service.py",
        "src/textclf/inference.py",
        "serve.yaml",
        "bentofile.yaml",
        "bentofile.gpu.yaml",
        "requirements/serving.txt",
        "bento/Dockerfile.j2",
    ],
)
def test_serving_files_change_the_tag(lock_repo: Path, path: str) -> None:
    before = tag_of(lock_repo)
    target = lock_repo / path
    target.write_text((target.read_text() if target.exists() else "") + "# changed\n")
    assert tag_of(lock_repo) != before


@pytest.mark.parametrize(
    "path",
    [
        "src/textclf/report/gate.py",  # the gate and the PR report
        "src/textclf/stages/train.py",  # training code
        "src/textclf_dev/bench/serving.py",  # a benchmark
        "src/textclf/new_module.py",  # code the service does not import
        "params.yaml",  # pipeline params: the model outputs carry their effect
        "gate.yaml",
        "README.md",
        "tests/test_new.py",
        "dvc.yaml",
        "deploy/overlays/production/kustomization.yaml",
        "src/textclf/notes.md",
    ],
)
def test_files_the_image_does_not_ship_keep_the_tag(lock_repo: Path, path: str) -> None:
    before = tag_of(lock_repo)
    target = lock_repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text((target.read_text() if target.exists() else "") + "# changed\n")
    assert tag_of(lock_repo) == before


def test_ignored_files_do_not_count(lock_repo: Path) -> None:
    """A file git ignores is not part of a commit, so not of the tag."""
    before = tag_of(lock_repo)
    (lock_repo / ".gitignore").write_text("scratch_*.py\n")
    (lock_repo / "src/textclf/scratch_1.py").write_text("x = 1\n")
    assert tag_of(lock_repo) == before


def test_rev_reads_the_commit_not_the_working_tree(lock_repo: Path) -> None:
    committed = tag_of(lock_repo)
    (lock_repo / "src/textclf/serving/service.py").write_text("VERSION = 2\n")
    assert tag_of(lock_repo) != committed
    assert tag_of(lock_repo, "HEAD") == committed
    second = commit_all(lock_repo, "service v2")
    assert tag_of(lock_repo, second) == tag_of(lock_repo)
    assert tag_of(lock_repo, "HEAD~1") == committed


def test_a_revert_gives_the_old_tag(lock_repo: Path) -> None:
    tag_a = tag_of(lock_repo)
    set_out_md5(lock_repo, "artifacts/onnx", "e" * 32 + ".dir")
    (lock_repo / "serve.yaml").write_text("max_batch_size: 8\n")
    commit_all(lock_repo, "model B")
    tag_b = tag_of(lock_repo)
    assert tag_b != tag_a
    git(lock_repo, "revert", "--no-edit", "HEAD")
    assert tag_of(lock_repo) == tag_a


def test_uncommitted_changes_are_named(lock_repo: Path) -> None:
    (lock_repo / "serve.yaml").write_text("max_batch_size: 8\n")
    result = release(lock_repo, "tag", "--no-status")
    assert result.exit_code == 0
    assert "uncommitted changes to serve.yaml" in result.stderr
    assert TAG.fullmatch(result.stdout.strip())


def test_missing_dvc_lock_says_to_run_dvc_repro(lock_repo: Path) -> None:
    (lock_repo / "dvc.lock").unlink()
    with pytest.raises(ReleaseError, match=r"dvc\.lock not found.*`dvc repro`"):
        tag_of(lock_repo)
    result = release(lock_repo, "tag", "--no-status")
    assert result.exit_code == 2
    assert "dvc repro" in result.stderr


def test_shipped_output_missing_from_dvc_lock(lock_repo: Path) -> None:
    """A bento file no stage has recorded: the error names it and `dvc repro`."""
    lock = dict(FAKE_LOCK, stages={k: v for k, v in FAKE_LOCK["stages"].items() if k != "export"})
    write_yaml(lock_repo / "dvc.lock", lock)
    with pytest.raises(ReleaseError) as err:
        tag_of(lock_repo)
    assert "artifacts/onnx/model.onnx" in str(err.value)
    assert "dvc repro" in str(err.value)


def test_output_without_md5(lock_repo: Path) -> None:
    set_out_md5(lock_repo, "artifacts/onnx", "")
    with pytest.raises(ReleaseError, match="artifacts/onnx.*no md5"):
        tag_of(lock_repo)


def test_unknown_revision(lock_repo: Path) -> None:
    with pytest.raises(ReleaseError, match="'nope' is not a commit"):
        tag_of(lock_repo, "nope")


def test_not_a_git_repository(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="git"):
        tag_of(tmp_path)
