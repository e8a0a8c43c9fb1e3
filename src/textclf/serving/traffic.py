"""Recorded traffic for drift monitoring: JSON lines, one file per process, rotated by size.

Each line is ``{"ts", "text", "label", "probabilities", "model_version"}``. The file is
``<hostname>-<pid>.jsonl`` so pods and workers sharing a volume never write the same file;
rotation keeps ``<name>.jsonl.1`` (newest) .. ``<name>.jsonl.<backups>`` (oldest).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

logger = logging.getLogger(__name__)


def default_name() -> str:
    """``<hostname>-<pid>.jsonl``: unique per pod and worker process."""
    return f"{socket.gethostname()}-{os.getpid()}.jsonl"


def record(
    text: str,
    label: str,
    probabilities: dict[str, float],
    model_version: str,
    ts: datetime | None = None,
) -> dict[str, Any]:
    """One traffic line."""
    return {
        "ts": (ts or datetime.now(UTC)).isoformat(timespec="milliseconds"),
        "text": text,
        "label": label,
        "probabilities": probabilities,
        "model_version": model_version,
    }


class TrafficLog:
    """Append-only JSON-lines file with size-bounded rotation; safe to call from threads."""

    def __init__(
        self, directory: Path, max_bytes: int, backups: int, name: str | None = None
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / (name or default_name())
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = None
        self._failing = False

    def write(self, records: Iterable[dict[str, Any]]) -> bool:
        """Append records; rotate first if they would overflow. False (logged) on an I/O error."""
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        if not data:
            return True
        with self._lock:
            try:
                fh = self._open()
                if fh.tell() and fh.tell() + len(data) > self.max_bytes:
                    self._rotate()
                    fh = self._open()
                fh.write(data)
                fh.flush()
            except OSError as err:
                self._close()
                if not self._failing:
                    logger.warning(
                        "traffic log %s not written (%s); predictions are still "
                        "served. Fix: check the volume behind TEXTCLF_TRAFFIC_DIR.",
                        self.path,
                        err,
                    )
                self._failing = True
                return False
            self._failing = False
            return True

    def files(self) -> list[Path]:
        """The current file and its backups, newest first."""
        names = [self.path] + [
            self.path.with_name(f"{self.path.name}.{i}") for i in range(1, self.backups + 1)
        ]
        return [p for p in names if p.is_file()]

    def close(self) -> None:
        """Close the file (reopened on the next write)."""
        with self._lock:
            self._close()

    def _open(self) -> IO[bytes]:
        if self._fh is None or self._fh.closed:
            self._fh = self.path.open("ab")
        return self._fh

    def _close(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                logger.debug("closing %s failed", self.path, exc_info=True)
            self._fh = None

    def _rotate(self) -> None:
        self._close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))
