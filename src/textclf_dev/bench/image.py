"""The serving image, run as a pod runs it: size, time from ``podman run`` to ready, memory.

``make image`` (scripts/containers/build-image.sh) builds ``localhost/textclf:<tag>``;
:func:`run_image` starts it the way ``deploy/base/rollout.yaml`` does (uid 1034, read-only root
filesystem with emptyDir-like tmpfs mounts, no capabilities, no privilege escalation) on a free
loopback port, and :func:`probe` measures it. ``tests/image`` asserts on the same container;
``make bench`` reports the figures.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from textclf.errors import ArtifactError

DEFAULT_STATE = Path("/var/tmp/textclf-containers")
SETUP_FIX = "Fix: run `make container-setup` (bash scripts/containers/setup.sh, as root)."
#: What ``$TEXTCLF_CONTAINERS/env`` exports (scripts/containers/setup.sh writes it).
ENV_KEYS = (
    "CONTAINERS_CONF",
    "CONTAINERS_STORAGE_CONF",
    "CONTAINERS_REGISTRIES_CONF",
    "TEXTCLF_CONTAINERS",
    "TEXTCLF_CONTAINERS_BUILD_CONF",
)
#: The pod's settings (deploy/base/rollout.yaml), as podman flags.
POD_FLAGS = (
    "--init",
    "--network=host",
    "--user=1034:1034",
    "--read-only",
    "--tmpfs=/tmp",
    "--tmpfs=/home/bentoml/bentoml",
    "--cap-drop=all",
    "--security-opt=no-new-privileges",
)
POD_ENV = {
    "BENTOML_HOME": "/home/bentoml/bentoml",
    "TMPDIR": "/tmp",
    "XDG_CACHE_HOME": "/tmp/.cache",
}


def state_dir() -> Path:
    """Where setup.sh keeps podman's configuration: ``$TEXTCLF_CONTAINERS`` or its default."""
    return Path(os.environ.get("TEXTCLF_CONTAINERS") or DEFAULT_STATE)


def containers_env(env_file: Path | None = None) -> dict[str, str]:
    """The variables ``source $TEXTCLF_CONTAINERS/env`` exports, read by bash itself."""
    env_file = env_file or state_dir() / "env"
    if not env_file.is_file():
        raise ArtifactError(f"{env_file} does not exist. {SETUP_FIX}")
    script = 'source "$1" && for k in "${@:2}"; do printf "%s=%s\\0" "$k" "${!k-}"; done'
    out = subprocess.run(
        ["bash", "-c", script, "bash", str(env_file), *ENV_KEYS],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    ).stdout
    env = dict(item.split("=", 1) for item in out.split("\0") if "=" in item)
    missing = [key for key in ENV_KEYS if not env.get(key)]
    if missing:
        raise ArtifactError(f"{env_file} does not export {', '.join(missing)}. {SETUP_FIX}")
    return env


def podman(env: Mapping[str, str], *args: str, timeout: float = 120) -> str:
    """Run podman with the project's configuration; its stdout, or ArtifactError with stderr."""
    proc = subprocess.run(
        ["podman", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise ArtifactError(f"`podman {' '.join(args)}` failed: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def image_size(env: Mapping[str, str], image: str) -> int:
    """The image's uncompressed size in bytes (what ``podman images`` shows)."""
    return int(podman(env, "image", "inspect", "--format", "{{.Size}}", image).strip())


def free_port() -> int:
    """A TCP port nothing listens on now (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Container:
    """A running serving container and what its start measured."""

    env: Mapping[str, str]
    name: str
    url: str
    ready_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    def exec(self, *command: str) -> str:
        """Run a command inside the container."""
        return podman(self.env, "exec", self.name, *command)

    def rss_bytes(self) -> int:
        """Resident memory of every process in the container (the sum of their VmRSS)."""
        total = 0
        listing = self.exec("sh", "-c", "grep -h VmRSS /proc/[0-9]*/status || true")
        for line in listing.splitlines():
            total += int(line.split()[1]) * 1024
        return total

    def logs(self) -> str:
        """The container's output so far, stdout and stderr (``podman logs`` splits them)."""
        proc = subprocess.run(
            ["podman", "logs", self.name],
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        return proc.stdout


@contextlib.contextmanager
def run_image(
    env: Mapping[str, str],
    image: str,
    extra_env: Mapping[str, str] | None = None,
    ready_timeout: float = 120.0,
    volumes: Sequence[str] = (),
) -> Iterator[Container]:
    """Start ``image`` like the pod, wait for ``/readyz``, yield it; always remove it.

    ``volumes``: podman ``--volume`` values (``host:container[:options]``).
    """
    port = free_port()
    name = f"textclf-probe-{port}"
    variables = {**POD_ENV, **(extra_env or {}), "PORT": str(port)}
    flags = [f"--env={k}={v}" for k, v in variables.items()]
    flags += [f"--volume={v}" for v in volumes]
    started = time.monotonic()
    podman(env, "run", "--detach", f"--name={name}", *POD_FLAGS, *flags, image)
    container = Container(env, name, f"http://127.0.0.1:{port}", started=started)
    try:
        deadline = started + ready_timeout
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{container.url}/readyz", timeout=2.0).status_code == 200:
                    break
            state = podman(env, "inspect", "--format", "{{.State.Status}}", name).strip()
            if state != "running" or time.monotonic() > deadline:
                raise ArtifactError(
                    f"{image} did not become ready in {ready_timeout:.0f} s (state {state}):\n"
                    + container.logs()[-3000:]
                )
            time.sleep(0.05)
        container.ready_seconds = time.monotonic() - started
        yield container
    finally:
        with contextlib.suppress(ArtifactError, subprocess.TimeoutExpired):
            podman(env, "rm", "--force", "--time=5", name, timeout=60)


def probe(
    env: Mapping[str, str], image: str, texts: Sequence[str], requests: int = 50
) -> dict[str, Any]:
    """Size, run-to-ready time, and memory after ``requests`` small /predict calls."""
    size = image_size(env, image)
    with run_image(env, image) as container:
        for i in range(requests):
            batch = [texts[(i + j) % len(texts)] for j in range(4)]
            resp = httpx.post(f"{container.url}/predict", json={"texts": batch}, timeout=30)
            if resp.status_code != 200:
                raise ArtifactError(f"/predict answered {resp.status_code}: {resp.text[:500]}")
        rss = container.rss_bytes()
        return {
            "image": image,
            "size_mb": size / 1e6,
            "ready_seconds": container.ready_seconds,
            "requests": requests,
            "rss_mib": rss / 2**20,
        }


def run(root: Path, quick: bool = False) -> dict[str, Any]:
    """The ``image`` benchmark: the workspace's serving and drift images, built by `make image`.

    Not measured (with the reason and the fix) where podman is not set up or an image is not
    built: timings never fail the benchmarks.
    """
    from textclf.errors import ReleaseError
    from textclf.paths import Paths
    from textclf.release.tag import compute
    from textclf_dev.bench.inference import default_texts

    try:
        env = containers_env()
        images = {
            key: f"localhost/{name}:{compute(root, image=key, verify=False).tag}"
            for key, name in (("serving", "textclf"), ("drift", "textclf-drift"))
        }
        sizes = {key: image_size(env, ref) / 1e6 for key, ref in images.items()}
    except (ArtifactError, ReleaseError) as err:
        return {"skipped": f"{err} (build them with `make container-setup && make image`)"}
    texts = default_texts(Paths(root).onnx_dir, 16 if quick else 64)
    figures = probe(env, images["serving"], texts, requests=10 if quick else 50)
    return {"images": images, "size_mb": sizes, "serving": figures}


def markdown(result: dict[str, Any]) -> str:
    """The image section of ``reports/bench.md``."""
    if result.get("skipped"):
        return f"### Images\n\nNot measured: {result['skipped']}."
    s = result["serving"]
    return "\n".join(
        [
            "### Images",
            "",
            "| image | size (MB) | podman run to /readyz (s) | RSS after the load (MiB) |",
            "|---|---:|---:|---:|",
            f"| `{result['images']['serving']}` | {result['size_mb']['serving']:.0f} | "
            f"{s['ready_seconds']:.2f} | {s['rss_mib']:.0f} ({s['requests']} requests) |",
            f"| `{result['images']['drift']}` | {result['size_mb']['drift']:.0f} | | |",
        ]
    )
