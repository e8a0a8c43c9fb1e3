"""The local python:3.11-slim runs like the official image does for BentoML's Dockerfile."""

from __future__ import annotations

import socket

import pytest

from tests.image.containers import BASE_IMAGE, Podman

pytestmark = pytest.mark.image

# How the project runs its images: non-root, with an init process, on the host's network.
RUN = ("run", "--rm", "--init", "--network=host", "--user", "1000:1000")


def test_base_image_runs_python_as_non_root(podman: Podman) -> None:
    """python:3.11-slim comes from local storage and runs Python 3.11 as uid 1000."""
    proc = podman(*RUN, BASE_IMAGE, "python", "-c", "import sys; print(sys.version)")
    assert proc.stdout.startswith("3.11."), proc.stdout


def test_runs_under_init_on_the_host_network(podman: Podman) -> None:
    """PID 1 is podman's init (catatonit, as podman-init); the host's loopback is reachable."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(30)
        port = server.getsockname()[1]
        script = (
            "import os, socket\n"
            "print(open('/proc/1/comm').read().strip(), os.getuid(), os.getgid())\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=10).sendall(b'hello')\n"
        )
        proc = podman(*RUN, BASE_IMAGE, "python", "-c", script)
        connection, _ = server.accept()
        with connection:
            received = connection.recv(16)
    assert proc.stdout.split() == ["podman-init", "1000", "1000"]
    assert received == b"hello"


def test_base_image_has_what_bentomls_dockerfile_uses(podman: Podman) -> None:
    """python/pip on PATH, pip may install system-wide, venv, useradd and apt-get are there."""
    script = """set -eu
    for tool in python pip groupadd useradd apt-get; do command -v "$tool"; done
    test ! -e /usr/lib/python3.11/EXTERNALLY-MANAGED
    python -m venv /tmp/venv && /tmp/venv/bin/python -m pip --version
    pip --version
    """
    proc = podman("run", "--rm", BASE_IMAGE, "sh", "-c", script)
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["/usr/local/bin/python", "/usr/local/bin/pip"], proc.stdout
    assert lines[-1].startswith("pip ") and lines[-1].endswith("(python 3.11)"), proc.stdout
