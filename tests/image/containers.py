"""Podman with the project's configuration, and a client of the local registry, for image tests.

``scripts/containers/setup.sh`` (``make container-setup``) writes the configuration and
``$TEXTCLF_CONTAINERS/env``; these helpers read that file and never touch the host's own podman
configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from textclf.errors import ArtifactError
from textclf_dev.bench.image import containers_env

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "containers"
BASE_IMAGE = "python:3.11-slim"
# podman pushes OCI manifests unless told `--format v2s2`: a client must accept both.
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)


def load_env(env_file: Path) -> dict[str, str]:
    """The variables ``source <env_file>`` exports (read as textclf_dev.bench.image does)."""
    try:
        return containers_env(env_file)
    except ArtifactError as err:
        raise ValueError(str(err)) from None


def tail(text: str, lines: int = 30) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass(frozen=True)
class Podman:
    """Runs podman with the project's configuration (``env``: the variables of the env file)."""

    env: dict[str, str]

    def __call__(
        self, *args: str, build: bool = False, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """``podman *args``; ``build=True`` uses the build-only containers.conf (CA mounts)."""
        env = {**os.environ, **self.env}
        if build:
            env["CONTAINERS_CONF"] = self.env["TEXTCLF_CONTAINERS_BUILD_CONF"]
        proc = subprocess.run(
            ["podman", *args], capture_output=True, text=True, env=env, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"`podman {' '.join(args)}` exited {proc.returncode}:\n"
                f"{tail(proc.stdout, 15)}\n{tail(proc.stderr)}"
            )
        return proc

    def build(self, context: Path, tag: str, *options: str) -> None:
        """Build ``context``'s Containerfile as ``tag``, never pulling a base image."""
        self("build", "--pull=never", "--tag", tag, *options, str(context), build=True)

    def push(self, image: str, destination: str, digest_file: Path) -> str:
        """Push ``image`` to a plain-HTTP registry; the manifest digest podman reports."""
        self(
            "push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file),
            image, destination, timeout=180,
        )  # fmt: skip
        return digest_file.read_text(encoding="utf-8").strip()

    def remove(self, *images: str) -> None:
        """Remove ``images`` (missing ones are fine)."""
        self("image", "rm", "--force", "--ignore", *images, check=False)


def remove_empty_libpod_cgroups(root: Path = Path("/sys/fs/cgroup")) -> None:
    """rmdir the empty cgroups podman's cgroupfs manager leaves under ``*/libpod_parent``."""
    for parent in root.glob("*/libpod_parent"):
        for path, _dirs, _files in sorted(os.walk(parent), key=lambda w: -len(w[0])):
            with contextlib.suppress(OSError):  # still in use, or not empty: keep it
                Path(path).rmdir()


@dataclass(frozen=True)
class Manifest:
    """A registry's answer to ``GET /v2/<repo>/manifests/<reference>``."""

    status: int
    digest: str | None
    media_type: str | None
    body: bytes

    @property
    def body_digest(self) -> str:
        """The sha256 of the bytes served, the digest a client should verify."""
        return "sha256:" + hashlib.sha256(self.body).hexdigest()


def registry_request(
    registry: str, path: str, method: str = "GET", accept: tuple[str, ...] = MANIFEST_TYPES
) -> Manifest:
    """One request to ``http://<registry>/v2/<path>``; HTTP errors are returned, not raised."""
    request = urllib.request.Request(f"http://{registry}/v2/{path}", method=method)
    if accept:
        request.add_header("Accept", ", ".join(accept))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    return Manifest(
        status=status,
        digest=headers.get("Docker-Content-Digest"),
        media_type=headers.get("Content-Type"),
        body=body,
    )


def manifest(registry: str, repository: str, reference: str) -> Manifest:
    """The manifest of ``repository:reference`` (a tag or a digest), OCI or Docker v2."""
    return registry_request(registry, f"{repository}/manifests/{reference}")
