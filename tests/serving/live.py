"""Run ``bentoml serve`` for the tests: :class:`textclf_dev.bench.server.BentoServer` in a clean
environment, with its output in a file the test names."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

from textclf_dev.bench.server import BentoServer

BENTOML = Path(sys.executable).with_name("bentoml")
# Variables of the parent test process that would change what the server loads or where it
# writes (bentoml sets its own PROMETHEUS_MULTIPROC_DIR).
DROPPED = ("PROMETHEUS_MULTIPROC_DIR", "BENTOML_HOME", "PYTHONPATH")
DROPPED_PREFIX = "TEXTCLF_"


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


@contextmanager
def serving(
    target: str, env: Mapping[str, str], cwd: Path, log: Path, ready_timeout_s: float = 90
) -> Iterator[BentoServer]:
    """``bentoml serve target`` on a free loopback port; yields once ``/readyz`` answers 200."""
    with BentoServer(
        target,
        server_env(env),
        cwd=cwd,
        ready_timeout=ready_timeout_s,
        log_file=log,
        inherit_env=False,
    ) as server:
        yield server


# What a client may see for a body the server refuses before reading it: the 413, or the
# connection closed while the client still wrote (never a 200).
REFUSED = (413, "WriteError", "RemoteProtocolError", "ReadError")


def post_oversized(url: str, size: int) -> tuple[int | str, float]:
    """POST a ``size``-byte JSON body to ``url``/predict in full: the status (or the transport
    error's name) and the seconds it took."""
    started = time.perf_counter()
    try:
        resp = httpx.post(
            f"{url}/predict",
            content=b'{"texts": ["' + b"y" * size + b'"]}',
            headers={"content-type": "application/json"},
            timeout=60,
        )
        answer: int | str = resp.status_code
    except httpx.TransportError as err:  # the server closed while the client still wrote
        answer = type(err).__name__
    return answer, time.perf_counter() - started
