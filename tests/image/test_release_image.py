"""The release's check of the real serving and drift images: fetched by the pinned digest from a
registry on loopback, their files re-hashed against dvc.lock and the commit."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.image.conftest import image_name
from tests.image.containers import REPO, Podman
from tests.release.conftest import PRODUCTION, commit_all, git, point_overlays_at, release
from textclf.release.overlays import set_pins
from textclf.release.tag import compute

pytestmark = pytest.mark.image


def _workspace_copy(dest: Path) -> Path:
    """The files git sees in this checkout, as they are (dvc.lock included), in a new repo whose
    DVC cache is this checkout's: what a release job has after `make release-pull`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        if rel.startswith("data/") or not (REPO / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest / rel)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "config", "user.email", "t@example.com")
    git(dest, "config", "user.name", "t")
    (dest / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {REPO / '.dvc' / 'cache'}\n")
    return dest


def test_the_release_verifies_the_pinned_images_and_refuses_a_swapped_digest(
    podman: Podman,
    registry: str,
    built_images: list[str],
    containers_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in containers_env.items():
        monkeypatch.setenv(key, value)
    root = _workspace_copy(tmp_path / "repo")
    point_overlays_at(root, registry)
    assert release(root, "manifests", "--no-status").exit_code == 0
    commit_all(root, "the reviewed model")

    def saved(image: str) -> Path:
        path = tmp_path / f"{image.rsplit(':', 1)[1]}.tar"
        podman("save", "--format", "oci-archive", "--output", str(path), image, timeout=600)
        return path

    serving = saved(f"localhost/textclf:{compute(REPO, verify=False).tag}")
    drift = saved(f"localhost/textclf-drift:{compute(REPO, image='drift', verify=False).tag}")
    for variant, archive in (("cpu", serving), ("gpu", serving), ("drift", drift)):
        pushed = release(root, "push", str(archive), "--variant", variant)
        assert pushed.exit_code == 0, pushed.output  # (the CPU image stands in for the GPU one)
    assert release(root, "pin").exit_code == 0
    for variant in ("cpu", "drift"):
        verified = release(root, "verify-image", "--variant", variant)
        assert verified.exit_code == 0, verified.output
        assert "files as named" in verified.stdout

    # Someone pins another image (here: the same service with a model file rewritten).
    context = tmp_path / "ctx"
    context.mkdir()
    base = f"localhost/textclf:{compute(REPO, verify=False).tag}"
    (context / "Containerfile").write_text(
        f"FROM {base}\nUSER root\n"
        "RUN echo x >> /home/bentoml/bento/src/artifacts/onnx/model.int8.onnx\nUSER bentoml\n"
    )
    swapped = image_name("swapped")
    built_images.append(swapped)
    podman.build(context, swapped)
    pushed = release(root, "push", str(saved(swapped)), "--variant", "cpu", "--rev", "HEAD")
    assert pushed.exit_code == 2 and "refusing to move it" in pushed.stderr, "tags never move"
    other = subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"containers-storage:{swapped}",
         f"docker://{registry}/your-org/gitops-text-classifier:m-swapped"],
        env={**os.environ, **containers_env},
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert other.returncode == 0, other.stderr
    from textclf.release.registry import digest

    swapped_digest = digest(f"{registry}/your-org/gitops-text-classifier:m-swapped")
    assert swapped_digest is not None
    tag = compute(root, verify=False).tag
    set_pins(root, {(PRODUCTION, "textclf"): (tag, swapped_digest)})
    refused = release(root, "verify-image", "--variant", "cpu")
    assert refused.exit_code == 2
    assert "artifacts/onnx/model.int8.onnx: the image has md5" in refused.stderr
