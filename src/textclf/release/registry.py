"""The OCI registry, through skopeo: which digest a tag names, and pushes that never move a tag.

skopeo (containers/skopeo, in Debian and on GitHub's Ubuntu runners) speaks the Distribution
API, its token and basic auth, and OCI as well as Docker v2 manifests; this module only decides:

* :func:`digest`: the manifest digest a tag names, or None when the registry has no such tag;
  anything else (no network, refused credentials) is an error, never a guess;
* :func:`push`: copy an OCI archive to ``repository:tag`` with its digest preserved, unless the
  tag already names another digest: a tag, once pushed, always names the same bytes, so a
  ``git revert`` brings back exactly what ran before.

Credentials: ``$TEXTCLF_REGISTRY_USERNAME`` / ``$TEXTCLF_REGISTRY_PASSWORD`` (e.g. github.actor
and a token that may read or write packages), passed to skopeo with ``--creds``. Registries on
localhost / 127.0.0.1 are plain HTTP (the tests' local registry).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from textclf.errors import ReleaseError

REGISTRY_USER_ENV = "TEXTCLF_REGISTRY_USERNAME"
REGISTRY_PASSWORD_ENV = "TEXTCLF_REGISTRY_PASSWORD"  # pragma: allowlist secret
_OCI_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
#: skopeo's messages for a tag or repository the registry does not have.
_MISSING = ("manifest unknown", "name unknown", "not found", "repository name not known")


@dataclass(frozen=True)
class ImageRef:
    """``registry/repository:tag``."""

    registry: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        """Parse ``host[:port]/path:tag``; Docker Hub names get ``docker.io``."""
        if "@" in ref:
            raise ReleaseError(f"{ref!r}: give a tag, not a digest")
        name, sep, tag = ref.rpartition(":")
        if not sep or "/" in tag or not _OCI_TAG.fullmatch(tag):
            raise ReleaseError(f"{ref!r} has no valid tag: expected <registry>/<name>:<tag>")
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            return cls(first, rest, tag)
        return cls("docker.io", name if "/" in name else f"library/{name}", tag)

    @property
    def local(self) -> bool:
        """A registry on this machine (plain HTTP)."""
        host = self.registry.rsplit(":", 1)[0]
        return host in {"localhost", "127.0.0.1", "[::1]"}

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"


def _skopeo(
    args: list[str],
    ref: ImageRef,
    env: Mapping[str, str] | None,
    source_side: bool = False,
) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("skopeo")
    if exe is None:
        raise ReleaseError(
            "skopeo is not installed: the release reads and writes the registry with it. Fix: "
            "`apt-get install skopeo` (or `make container-setup`); GitHub's Ubuntu runners have "
            "it."
        )
    environ = dict(os.environ if env is None else env)
    command, *rest = args
    # copy's flags name the side the registry is on.
    side = ("--src-" if source_side else "--dest-") if command == "copy" else "--"
    creds = []
    user, password = environ.get(REGISTRY_USER_ENV), environ.get(REGISTRY_PASSWORD_ENV)
    if user and password:
        creds = [f"{side}creds={user}:{password}"]
    tls = [f"{side}tls-verify=false"] if ref.local else []
    proc = subprocess.run(
        [exe, command, *tls, *creds, *rest],
        capture_output=True,
        text=True,
        timeout=1800,
        env=environ,
    )
    return proc


def digest(ref: str, env: Mapping[str, str] | None = None) -> str | None:
    """The manifest digest ``ref`` names in its registry, or None when it has no such tag."""
    image = ImageRef.parse(ref)
    proc = _skopeo(
        ["inspect", "--no-tags", "--format", "{{.Digest}}", f"docker://{image}"], image, env
    )
    if proc.returncode == 0:
        found = proc.stdout.strip()
        if not _DIGEST.fullmatch(found):
            raise ReleaseError(f"skopeo gave no sha256 digest for {ref}: {found!r}")
        return found
    error = proc.stderr.strip()
    if any(marker in error.lower() for marker in _MISSING):
        return None
    hint = ""
    if "unauthorized" in error.lower() or "denied" in error.lower():
        hint = (
            f" Fix: set {REGISTRY_USER_ENV} and {REGISTRY_PASSWORD_ENV} to credentials that may "
            "read it."
        )
    raise ReleaseError(f"cannot tell whether {ref} exists: {error[-800:]}{hint}")


def image_exists(ref: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether the registry has a manifest for ``ref``."""
    return digest(ref, env) is not None


def archive_digest(archive: Path) -> str:
    """The manifest digest of a single-image OCI archive (``podman save --format oci-archive``)."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile("index.json")
            index = json.load(member) if member else None
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as err:
        raise ReleaseError(f"{archive} is not an OCI archive with an index.json: {err}") from err
    manifests = (index or {}).get("manifests") or []
    if len(manifests) != 1 or not _DIGEST.fullmatch(str(manifests[0].get("digest", ""))):
        raise ReleaseError(
            f"{archive} must hold exactly one image manifest (found {len(manifests)}): save one "
            "image with `podman save --format oci-archive`"
        )
    return str(manifests[0]["digest"])


def push(archive: Path, ref: str, env: Mapping[str, str] | None = None) -> tuple[str, bool]:
    """Push ``archive`` to ``ref`` unless the tag exists; (the digest ``ref`` names, pushed?).

    A tag that already names the archive's digest is left as it is; one that names another
    digest is an error: pushing would move a released tag to other bytes.
    """
    image = ImageRef.parse(ref)
    wanted = archive_digest(archive)
    existing = digest(ref, env)
    if existing == wanted:
        return existing, False
    if existing is not None:
        raise ReleaseError(
            f"{ref} already names {existing}; refusing to move it to {wanted}. A release tag "
            "always names the same bytes: the image for this content was pushed before, so pin "
            "that digest (`make release-pin`) instead of pushing a rebuild."
        )
    proc = _skopeo(
        ["copy", "--preserve-digests", f"oci-archive:{archive}", f"docker://{image}"],
        image,
        env,
    )
    if proc.returncode != 0:
        raise ReleaseError(f"pushing {archive} to {ref} failed: {proc.stderr.strip()[-1500:]}")
    pushed = digest(ref, env)
    if pushed != wanted:
        raise ReleaseError(f"{ref} names {pushed} after the push, not the archive's {wanted}")
    return wanted, True


def pull(
    repository: str,
    tag: str,
    digest_: str,
    archive: Path,
    env: Mapping[str, str] | None = None,
) -> None:
    """Copy ``repository@digest`` (the bytes that were pinned, whatever the tag names now) into
    an OCI archive, preserving the manifest."""
    image = ImageRef.parse(f"{repository}:{tag}")
    if not _DIGEST.fullmatch(digest_):
        raise ReleaseError(f"{digest_!r} is not a sha256 image digest")
    source = f"docker://{image.registry}/{image.repository}@{digest_}"
    archive.unlink(missing_ok=True)
    proc = _skopeo(
        ["copy", "--preserve-digests", source, f"oci-archive:{archive}"],
        image,
        env,
        source_side=True,
    )
    if proc.returncode != 0:
        raise ReleaseError(f"cannot fetch {source}: {proc.stderr.strip()[-1500:]}")
    if archive_digest(archive) != digest_:
        raise ReleaseError(f"{source} arrived as another manifest: {archive_digest(archive)}")
