"""Pushes to the local OCI registry: the digest podman reports is the one the registry serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.image.conftest import image_name
from tests.image.containers import MANIFEST_TYPES, Podman, manifest, registry_request

pytestmark = pytest.mark.image

OCI_MANIFEST = MANIFEST_TYPES[0]


def test_pushed_digest_is_the_registry_manifest_digest(
    podman: Podman, registry: str, demo_image: str, tmp_path: Path
) -> None:
    """podman push --digestfile, Docker-Content-Digest and the served bytes' sha256 agree."""
    pushed = podman.push(demo_image, f"{registry}/demo:one", tmp_path / "digest")
    assert pushed.startswith("sha256:")

    by_tag = manifest(registry, "demo", "one")
    assert by_tag.status == 200, by_tag.body[:300]
    assert by_tag.media_type in MANIFEST_TYPES
    assert by_tag.digest == pushed
    assert by_tag.body_digest == pushed
    assert manifest(registry, "demo", pushed).status == 200

    # Without the OCI Accept type the registry does not serve podman's default OCI manifest.
    if by_tag.media_type == OCI_MANIFEST:
        bare = registry_request(registry, "demo/manifests/one", accept=())
        assert bare.digest != pushed


def test_pushing_another_image_moves_the_tag(
    podman: Podman,
    registry: str,
    demo_image: str,
    built_images: list[str],
    tmp_path: Path,
) -> None:
    """A tag is mutable: only a digest pins an image (what the release must check)."""
    (tmp_path / "Containerfile").write_text(
        f"FROM {demo_image}\nLABEL org.textclf.test=two\n", encoding="utf-8"
    )
    other = image_name("demo-two")
    built_images.append(other)
    podman.build(tmp_path, other)

    destination = f"{registry}/demo:moving"
    first = podman.push(demo_image, destination, tmp_path / "first")
    assert manifest(registry, "demo", "moving").digest == first
    second = podman.push(other, destination, tmp_path / "second")
    assert second != first
    assert manifest(registry, "demo", "moving").digest == second

    # The first image is still there by digest until it is deleted (deletion is enabled).
    assert manifest(registry, "demo", first).status == 200
    deleted = registry_request(registry, f"demo/manifests/{first}", method="DELETE")
    assert deleted.status == 202, deleted.body[:300]
    assert manifest(registry, "demo", first).status == 404
    assert manifest(registry, "demo", "moving").digest == second
