"""The BentoML service as a real ``bentoml serve`` subprocess on 127.0.0.1 (benchmarks, tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from textclf.errors import ArtifactError

SERVICE = "textclf.serving.service:TextClassifier"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BentoServer:
    """``bentoml serve`` in its own process group; a context manager that waits for /readyz.

    ``target`` is the service import string (served from this environment's ``textclf``) or the
    path of a built bento. ``env`` is added to the current environment, or is the whole
    environment with ``inherit_env=False``. The server's output goes to ``log_file`` (a temporary
    file by default); :meth:`log` reads it, also after :meth:`stop`.
    """

    def __init__(
        self,
        target: str = SERVICE,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_timeout: float = 120.0,
        log_file: Path | None = None,
        inherit_env: bool = True,
    ) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**(os.environ if inherit_env else {}), **(env or {})}
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        # Kept open: log() reads it after stop.
        self._log = log_file.open("w+b") if log_file else tempfile.TemporaryFile()  # noqa: SIM115

    def __enter__(self) -> BentoServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        """Process id of ``bentoml serve``: the root of the server's process tree."""
        if self.proc is None:
            raise RuntimeError("the server has not been started")
        return self.proc.pid

    module: tuple[str, ...] = ("bentoml", "serve")  # ``python -m`` of the server, then target
    options: tuple[str, ...] = ()  # after the host and port

    def command(self) -> list[str]:
        """The server's command line: ``python -m <module> <target>`` on :attr:`port`."""
        return [
            sys.executable,
            "-m",
            *self.module,
            self.target,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.options,
        ]

    def start(self) -> None:
        """Start the server and block until /readyz answers 200 (or raise with its log)."""
        cmd = self.command()
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ArtifactError(
                    f"`{' '.join(cmd)}` exited with {self.proc.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        self.stop()
        raise ArtifactError(
            f"`{' '.join(cmd)}` was not ready within {self.ready_timeout:.0f} s:\n{self.log()}"
        )

    def stop(self) -> None:
        """SIGTERM the server's process group, then SIGKILL whatever is left of it (workers
        can outlive the arbiter)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def log(self, tail: int = 8000) -> str:
        """The server's combined stdout/stderr so far (last ``tail`` characters)."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-tail:]


class UvicornServer(BentoServer):
    """``uvicorn`` serving the ASGI app ``target`` (``module:attribute``) with its default loop and
    HTTP parser (uvloop and httptools where installed, as under ``bentoml serve``), no access log.
    """

    module = ("uvicorn",)
    options = ("--no-access-log", "--log-level", "warning")
