"""Builds FROM the local base image install packages from PyPI through the host's CA bundle."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.image.conftest import image_name
from tests.image.containers import Podman

pytestmark = pytest.mark.image

BUILD_ONLY_MOUNTS = ("/etc/ssl/certs/ca-certificates.crt", "/etc/uv/uv.toml")


def bentoml_uv_pin() -> str:
    """The uv version BentoML's generated Dockerfile installs (from its template)."""
    spec = importlib.util.find_spec("bentoml")
    assert spec is not None and spec.origin is not None, "bentoml is not installed in this venv"
    macros = Path(spec.origin).parent.joinpath(
        "_internal", "container", "frontend", "dockerfile", "templates", "_macros.j2"
    )
    found = re.search(r"uv==([0-9][0-9.]*)", macros.read_text(encoding="utf-8"))
    assert found, f"no uv==<version> pin in {macros}: update bentoml_uv_pin for this BentoML"
    return found.group(1)


def test_demo_image_runs(podman: Podman, demo_image: str) -> None:
    """The image built with a package from PyPI runs it, as a non-root user."""
    proc = podman("run", "--rm", "--init", "--user", "1000:1000", demo_image)
    assert proc.stdout.strip() == "six 1.17.0"


def test_build_mounts_stay_out_of_running_containers(podman: Podman, demo_image: str) -> None:
    """The CA bundle and uv.toml are mounted in builds only, not in containers that run."""
    proc = podman("run", "--rm", demo_image, "cat", "/proc/self/mountinfo")
    mount_points = {line.split()[4] for line in proc.stdout.splitlines()}
    assert mount_points.isdisjoint(BUILD_ONLY_MOUNTS), sorted(mount_points)


def test_uv_in_builds_trusts_the_host_ca(
    podman: Podman, built_images: list[str], tmp_path: Path
) -> None:
    """uv, as BentoML's Dockerfile installs it, reaches PyPI in a build (uv.toml: system-certs)."""
    (tmp_path / "Containerfile").write_text(
        "FROM python:3.11-slim\n"
        "RUN pip install --no-cache-dir --root-user-action=ignore --disable-pip-version-check"
        f" uv=={bentoml_uv_pin()}\n"
        "RUN uv pip install --system --no-cache idna==3.10\n"
        'CMD ["python", "-c", "import idna; print(idna.__version__)"]\n',
        encoding="utf-8",
    )
    name = image_name("uv")
    built_images.append(name)
    podman.build(tmp_path, name)
    proc = podman("run", "--rm", "--user", "1000:1000", name)
    assert proc.stdout.strip() == "3.10"
