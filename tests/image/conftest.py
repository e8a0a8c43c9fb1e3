"""Fixtures of the image tests: the project's podman setup, a local registry, a small image.

These tests need ``make container-setup`` (scripts/containers/setup.sh) to have run on this
machine: without podman or the base image they fail and say so, they do not skip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.image.containers import (
    BASE_IMAGE,
    SCRIPTS,
    Podman,
    load_env,
    remove_empty_libpod_cgroups,
    tail,
)
from tests.release.conftest import _pipeline_template, pipeline_repo  # noqa: F401 (fixtures)
from textclf.errors import ArtifactError
from textclf.release.tag import compute
from textclf_dev.bench.image import SETUP_FIX, image_size, state_dir

# Names of the images these tests build: unique per session, removed at its end.
SESSION = uuid.uuid4().hex[:8]
IMAGE_PREFIX = "localhost/textclf-image-tests"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: Figures the image tests measure (printed at the end of the run).
FIGURES: dict[str, str] = {}

# The demo image: one small pure-Python package from PyPI, installed through the host's CA
# bundle, which (like uv's config) only the build-only containers.conf mounts.
DEMO_CONTAINERFILE = """\
FROM python:3.11-slim
ARG HOST_CA_SHA256
RUN echo "$HOST_CA_SHA256  /etc/ssl/certs/ca-certificates.crt" | sha256sum --check --quiet - \\
    && grep -qx 'system-certs = true' /etc/uv/uv.toml
RUN pip install --no-cache-dir --root-user-action=ignore --disable-pip-version-check \\
    six==1.17.0
CMD ["python", "-c", "import six; print('six', six.__version__)"]
"""


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``image`` marker (also declared in pyproject.toml)."""
    config.addinivalue_line(
        "markers", "image: needs podman and the base image (`make container-setup`)"
    )


@pytest.fixture(scope="session")
def containers_env() -> dict[str, str]:
    """The variables of ``$TEXTCLF_CONTAINERS/env``; fails with the fix when setup is missing."""
    if shutil.which("podman") is None:
        pytest.fail(f"podman is not installed. {SETUP_FIX}", pytrace=False)
    env_file = state_dir() / "env"
    if not env_file.is_file():
        pytest.fail(f"{env_file} does not exist. {SETUP_FIX}", pytrace=False)
    try:
        env = load_env(env_file)
    except (ValueError, subprocess.CalledProcessError) as error:
        pytest.fail(f"cannot read {env_file}: {error}. {SETUP_FIX}", pytrace=False)
    exists = subprocess.run(
        ["podman", "image", "exists", BASE_IMAGE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    if exists.returncode != 0:
        pytest.fail(
            f"the base image {BASE_IMAGE} is not in {env['CONTAINERS_STORAGE_CONF']}'s storage "
            f"({tail(exists.stderr, 3) or 'not found'}). {SETUP_FIX}",
            pytrace=False,
        )
    return env


@pytest.fixture(scope="session")
def podman(containers_env: dict[str, str]) -> Iterator[Podman]:
    """Run podman with the project's configuration; the empty cgroups it leaves are removed."""
    yield Podman(containers_env)
    remove_empty_libpod_cgroups()


@pytest.fixture(scope="session")
def registry(containers_env: dict[str, str]) -> Iterator[str]:
    """A local OCI registry (scripts/containers/registry.sh) on a free port: its host:port.

    Up to three ports are tried: the port is free when picked but another process may take it
    before the registry binds it (seen once in a full `make test-image`: it exited at once)."""
    script = str(SCRIPTS / "registry.sh")
    failures = []
    for _attempt in range(3):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, **containers_env, "TEXTCLF_REGISTRY_PORT": str(port)}
        started = subprocess.run(
            ["bash", script, "start"], env=env, capture_output=True, text=True, timeout=60
        )
        if started.returncode == 0:
            break
        failures.append(f"port {port}: {started.stderr.strip()}")
    else:
        pytest.fail("registry.sh start failed:\n" + "\n".join(failures), pytrace=False)
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True, timeout=60)


def workspace_image(env: dict[str, str], name: str, key: str) -> str:
    """``localhost/<name>:<the workspace's tag>``, built by `make image` (fails with the fix)."""
    from tests.image.containers import REPO

    image = f"localhost/{name}:{compute(REPO, image=key, verify=False).tag}"
    try:
        image_size(env, image)
    except ArtifactError as err:
        pytest.fail(f"{image} is not built ({err}). Fix: run `make test-image`.", pytrace=False)
    return image


def image_name(name: str) -> str:
    """A local image name unique to this test session."""
    return f"{IMAGE_PREFIX}/{name}:{SESSION}"


@pytest.fixture(scope="session")
def built_images(podman: Podman) -> Iterator[list[str]]:
    """Names of the images tests build; all are removed at the end of the session."""
    names: list[str] = []
    yield names
    if names:
        podman.remove(*names)


@pytest.fixture(scope="session")
def demo_image(
    podman: Podman, built_images: list[str], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A small image built FROM python:3.11-slim with a package installed from PyPI."""
    context = tmp_path_factory.mktemp("demo-image")
    (context / "Containerfile").write_text(DEMO_CONTAINERFILE, encoding="utf-8")
    ca_sha256 = hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest()
    name = image_name("demo")
    built_images.append(name)
    podman.build(context, name, "--build-arg", f"HOST_CA_SHA256={ca_sha256}")
    return name


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the serving image's figures (size, run to ready, memory) the tests measured."""
    if FIGURES:
        terminalreporter.write_sep("-", "serving image")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name:<32} {value}")


Archive = Callable[[str], Path]


@pytest.fixture
def archive(podman: Podman, built_images: list[str], tmp_path: Path, registry: str) -> Archive:
    """``archive(label)``: an OCI archive of a tiny image that differs by its label."""

    def make(label: str) -> Path:
        context = tmp_path / f"ctx-{label}"
        context.mkdir()
        (context / "Containerfile").write_text(f"FROM python:3.11-slim\nLABEL model={label}\n")
        name = image_name(f"tiny-{label}")
        built_images.append(name)
        podman.build(context, name)
        path = tmp_path / f"{label}.tar"
        podman("save", "--format", "oci-archive", "--output", str(path), name)
        return path

    return make


@pytest.fixture
def env(containers_env: dict[str, str]) -> dict[str, str]:
    """The environment for skopeo: the project's registries.conf (127.0.0.1 is plain HTTP)."""
    return {**os.environ, **containers_env}
