"""Run ``bentoml serve`` as a subprocess on 127.0.0.1: free port, readiness wait, group kill."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BENTOML = Path(sys.executable).with_name("bentoml")
# Variables of the parent test process that would change what the server loads or where it
# writes (bentoml sets its own PROMETHEUS_MULTIPROC_DIR).
DROPPED = ("PROMETHEUS_MULTIPROC_DIR", "BENTOML_HOME", "PYTHONPATH")
DROPPED_PREFIX = "TEXTCLF_"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without serving variables, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if k not in DROPPED and not k.startswith(DROPPED_PREFIX)
    }
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "BENTOML_DO_NOT_TRACK": "true",
            "TOKENIZERS_PARALLELISM": "false",
            **extra,
        }
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@dataclass(frozen=True)
class Server:
    """A running ``bentoml serve``: its base URL, process and log file."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's combined stdout/stderr."""
        return self.log.read_text("utf-8", errors="replace")[-chars:]


def stop(process: subprocess.Popen[Any], grace_s: float = 10) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it is still there."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace_s)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # workers that outlived the arbiter
    process.wait(timeout=grace_s)


@contextmanager
def serving(
    target: str, env: Mapping[str, str], cwd: Path, log: Path, ready_timeout_s: float = 90
) -> Iterator[Server]:
    """``bentoml serve target`` on a free loopback port; yields once ``/readyz`` answers 200."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BENTOML), "serve", target, "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=server_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_ready(server, ready_timeout_s)
        yield server
    finally:
        stop(process)


def wait_ready(server: Server, timeout_s: float) -> None:
    """Poll ``/readyz`` until it answers 200; fail with the server log if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(
                f"bentoml serve exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"bentoml serve not ready after {timeout_s} s:\n{server.log_tail()}")
