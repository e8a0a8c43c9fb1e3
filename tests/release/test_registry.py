"""The registry client's own logic: references, OCI archives, and the errors it gives.

Against a real registry (tests/image/test_release_registry.py): digests, pushes that never move
a tag, pins and the rollback.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from textclf.errors import ReleaseError
from textclf.release.registry import ImageRef, archive_digest, digest

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("ghcr.io/org/repo:m-0123456789ab", ("ghcr.io", "org/repo", "m-0123456789ab")),
        ("localhost:5000/a/b:v1", ("localhost:5000", "a/b", "v1")),
        ("127.0.0.1:5000/a:v1", ("127.0.0.1:5000", "a", "v1")),
        ("ubuntu:24.04", ("docker.io", "library/ubuntu", "24.04")),
        ("org/app:1", ("docker.io", "org/app", "1")),
    ],
)
def test_parse_image_reference(ref: str, expected: tuple[str, str, str]) -> None:
    image = ImageRef.parse(ref)
    assert (image.registry, image.repository, image.tag) == expected


@pytest.mark.parametrize("ref", ["ghcr.io/org/repo", "ghcr.io/org/repo@sha256:00", "a:b/c"])
def test_references_without_a_tag_are_refused(ref: str) -> None:
    with pytest.raises(ReleaseError, match="tag"):
        ImageRef.parse(ref)


def test_only_local_registries_are_plain_http() -> None:
    assert ImageRef.parse("127.0.0.1:5000/a:v1").local
    assert ImageRef.parse("localhost:5000/a:v1").local
    assert not ImageRef.parse("ghcr.io/a/b:v1").local


def _archive(path: Path, index: object) -> Path:
    with tarfile.open(path, "w") as tar:
        data = json.dumps(index).encode()
        info = tarfile.TarInfo("index.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_the_archive_digest_is_its_one_manifest(tmp_path: Path) -> None:
    one = {"schemaVersion": 2, "manifests": [{"digest": DIGEST, "size": 1}]}
    assert archive_digest(_archive(tmp_path / "one.tar", one)) == DIGEST
    two = {"manifests": [{"digest": DIGEST}, {"digest": DIGEST}]}
    with pytest.raises(ReleaseError, match="exactly one image manifest"):
        archive_digest(_archive(tmp_path / "two.tar", two))
    (tmp_path / "junk.tar").write_bytes(b"not a tar")
    with pytest.raises(ReleaseError, match="not an OCI archive"):
        archive_digest(tmp_path / "junk.tar")


def test_without_skopeo_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ReleaseError, match="skopeo is not installed.*apt-get install skopeo"):
        digest("127.0.0.1:5000/a:v1")
