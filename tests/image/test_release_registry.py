"""The release against a real OCI registry on loopback: push, pin, verify, and roll back.

Images here are tiny (a LABEL on the base image): the release logic only moves tags and
digests. The serving image itself is probed in test_serving_image.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.image.conftest import Archive
from tests.release.conftest import (
    PRODUCTION,
    PRODUCTION_GPU,
    STAGING,
    commit_all,
    dvc,
    git,
    point_overlays_at,
    release,
)
from textclf.errors import ReleaseError
from textclf.release.registry import archive_digest, digest, push

pytestmark = pytest.mark.image


@pytest.fixture
def release_repo(
    pipeline_repo: Path, registry: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The pipeline repo with its overlays pointed at the loopback registry, rendered."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    point_overlays_at(pipeline_repo, registry)
    assert release(pipeline_repo, "manifests").exit_code == 0
    return pipeline_repo


def test_push_keeps_the_digest_and_never_moves_a_tag(
    registry: str, archive: Archive, env: dict[str, str]
) -> None:
    a, b = archive("a"), archive("b")
    ref = f"{registry}/demo/app:m-000000000001"
    assert digest(ref, env) is None
    pushed, fresh = push(a, ref, env)
    assert fresh and pushed == archive_digest(a) == digest(ref, env)
    assert push(a, ref, env) == (pushed, False), "the same bytes again: nothing to do"
    with pytest.raises(ReleaseError, match="refusing to move it") as err:
        push(b, ref, env)
    assert "make release-pin" in str(err.value)
    assert digest(ref, env) == pushed, "the tag still names the first image"


def _pins(root: Path) -> dict[tuple[str, str], tuple[str, str | None]]:
    out = {}
    for overlay in (PRODUCTION, STAGING, PRODUCTION_GPU):
        for entry in yaml.safe_load((root / overlay).read_text())["images"]:
            out[(overlay, entry["name"])] = (entry.get("newTag"), entry.get("digest"))
    return out


def _ship(root: Path, archive: Archive, label: str, env: dict[str, str]) -> dict[str, str]:
    """What the review does for a model: push each variant's image; then the author pins."""
    digests = {}
    for variant in ("cpu", "gpu", "drift"):
        result = release(root, "push", str(archive(f"{label}-{variant}")), "--variant", variant)
        assert result.exit_code == 0, result.output
        digests[variant] = result.stdout.strip().rsplit("@", 1)[1]
    pinned = release(root, "pin")
    assert pinned.exit_code == 0, pinned.output
    return digests


def test_pin_writes_the_registry_digests_and_images_verifies_them(
    release_repo: Path, registry: str, archive: Archive, env: dict[str, str]
) -> None:
    root = release_repo
    unpinned = release(root, "images")
    assert unpinned.exit_code == 2 and "no digest pinned" in unpinned.stderr
    missing = release(root, "pin")
    assert missing.exit_code == 2 and "not in the registry yet" in missing.stderr
    assert all(d is None for _, d in _pins(root).values()), "nothing written on failure"

    digests = _ship(root, archive, "a", env)
    pins = _pins(root)
    assert pins[(PRODUCTION, "textclf")][1] == digests["cpu"]
    assert pins[(STAGING, "textclf-drift")][1] == digests["drift"]
    gpu_name = f"{registry}/your-org/gitops-text-classifier"
    assert pins[(PRODUCTION_GPU, gpu_name)][1] == digests["gpu"] != digests["cpu"]
    verified = release(root, "images")
    assert verified.exit_code == 0, verified.output

    # A pin edited by hand (or a tag moved behind the release's back) is caught.
    overlay = root / STAGING
    overlay.write_text(overlay.read_text().replace(digests["cpu"], "sha256:" + "9" * 64))
    tampered = release(root, "images")
    assert tampered.exit_code == 2 and "the tag was moved or the pin edited" in tampered.stderr


def test_a_revert_brings_back_the_pinned_images_and_builds_nothing(
    release_repo: Path, archive: Archive, env: dict[str, str]
) -> None:
    root = release_repo
    # main at model A: reviewed, its images pushed and pinned.
    _ship(root, archive, "a", env)
    commit_a = commit_all(root, "release model A")
    pins_a = _pins(root)

    # A pull request proposes model B and is merged.
    git(root, "switch", "-q", "-c", "model-b")
    (root / "params.yaml").write_text("export:\n  seed: 2\n")
    dvc(root, "repro", "-q")
    assert release(root, "manifests").exit_code == 0
    _ship(root, archive, "b", env)
    commit_all(root, "model B")
    git(root, "switch", "-q", "main")
    git(root, "merge", "-q", "--no-ff", "-m", "Merge model B", "model-b")
    pins_b = _pins(root)
    assert pins_b != pins_a
    assert release(root, "images", "--rev", "HEAD").exit_code == 0

    # Roll back: the revert names A's tags and digests again, and the registry has them.
    git(root, "revert", "-m", "1", "--no-edit", "HEAD")
    for path in ("dvc.lock", "params.yaml", PRODUCTION, STAGING, PRODUCTION_GPU):
        assert git(root, "show", f"HEAD:{path}") == git(root, "show", f"{commit_a}:{path}"), path
    assert _pins(root) == pins_a
    dvc(root, "checkout", "-q")
    checked = release(root, "check")
    assert checked.exit_code == 0, checked.output
    verified = release(root, "images", "--rev", "HEAD")
    assert verified.exit_code == 0, verified.output
    # The release builds nothing: pushing A's images again would be a no-op, B's still exist.
    for (_, _), (tag, pinned) in pins_b.items():
        assert tag is not None and pinned is not None
    for (overlay, name), (tag, pinned) in pins_a.items():
        repository = next(
            e["newName"]
            for e in yaml.safe_load((root / overlay).read_text())["images"]
            if e["name"] == name
        )
        assert digest(f"{repository}:{tag}", env) == pinned
