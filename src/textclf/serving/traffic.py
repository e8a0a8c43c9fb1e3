"""Recorded traffic for drift monitoring: JSON lines written off the model thread, kept bounded.

Each line is one record (format version 2)::

    {"v": 2, "ts": "2024-05-01T12:00:00.123+00:00", "id": "p1.<version>.cG9zaXRpdmU.<nonce>.<mac>",
     "label": "positive",
     "probabilities": {"negative": 0.1, "positive": 0.9}, "model_version": "<content hash>",
     "features": {"chars": 17, "words": 4, "non_letter_share": 0.0, "has_url": false,
                  "has_mention": false, "has_hashtag": false, "has_emoji": false},
     "text": "I love this phone"}

``"id"`` is the prediction id the service returned for the text (:mod:`textclf.serving.ids`),
the key that joins feedback to traffic. ``"text"`` is there only in the ``keep`` text mode and
``"text_hmac"`` (HMAC-SHA256 hex of the UTF-8 text) only in ``hash`` mode; ``drop`` keeps
neither. ``features`` come from :func:`textclf.text_features.describe`, the code the drift
reference profile is built with.

Feedback (``POST /feedback``, :mod:`textclf.serving.feedback`) is written the same way beside
it, to ``<hostname>-<pid>.feedback.jsonl`` (:data:`textclf.records.FEEDBACK_FILE`): same rotation
and retention (one budget for both), and no text to redact (a feedback record holds the id, the
true label, and what the id says was predicted by which model).

Files are ``<hostname>-<pid>.jsonl``, one per process, so pods and workers sharing a volume never
write the same file; they are created 0600 (the directory 0700). Rotation keeps
``<name>.jsonl.1`` (newest) .. ``<name>.jsonl.<backups>``. Retention covers every process's files
in the directory: at start, after each rotation and every minute, files last written more than
``max_age_days`` ago are deleted, then the oldest until all together hold at most
``max_total_bytes``. A writer whose file was deleted (by another pod's retention) opens a new one.

:meth:`TrafficLog.submit` only queues, and never blocks: a model call whose records do not fit
the queue is dropped and counted. A daemon thread builds the records and writes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import socket
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

from textclf.config.serve import TrafficLogParams
from textclf.errors import ConfigError
from textclf.records import FEEDBACK_SUFFIX, RECORD_FILE, TRAFFIC_VERSION, feedback_record
from textclf.text_features import describe

logger = logging.getLogger(__name__)

FORMAT_VERSION = TRAFFIC_VERSION
TEXT_MODES = ("keep", "hash", "drop")  # serve.traffic_log.text
HASH_KEY_ENV = "TEXTCLF_TRAFFIC_HASH_KEY"
MIN_HASH_KEY_BYTES = 16
FILE_MODE = 0o600
DIR_MODE = 0o700
SWEEP_INTERVAL_S = 60.0
DRAIN_TIMEOUT_S = 5.0
# Current and rotated traffic and feedback files: what retention manages.
TRAFFIC_FILE = RECORD_FILE

# One classified text: (text, label, probabilities, model_version[, prediction id]).
Entry = tuple[str, str, dict[str, float], str] | tuple[str, str, dict[str, float], str, str]
# One feedback item: (prediction id, true label, predicted label, model version).
FeedbackEntry = tuple[str, str, str, str]


def default_name(suffix: str = ".jsonl") -> str:
    """``<hostname>-<pid><suffix>``: unique per pod and worker process."""
    return f"{socket.gethostname()}-{os.getpid()}{suffix}"


def text_hmac(text: str, key: bytes) -> str:
    """HMAC-SHA256 of the UTF-8 text, hex (a lone surrogate is encoded as is)."""
    return hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def record(
    text: str,
    label: str,
    probabilities: dict[str, float],
    model_version: str,
    ts: datetime | None = None,
    *,
    text_mode: str = "keep",
    hash_key: bytes | None = None,
    prediction_id: str | None = None,
) -> dict[str, Any]:
    """One traffic line (format version 2) for one classified text."""
    out: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "ts": (ts or datetime.now(UTC)).isoformat(timespec="milliseconds"),
        **({"id": prediction_id} if prediction_id else {}),
        "label": label,
        "probabilities": probabilities,
        "model_version": model_version,
        "features": describe(text),
    }
    if text_mode == "keep":
        out["text"] = text
    elif text_mode == "hash":
        if not hash_key:
            raise ValueError("text_mode 'hash' needs hash_key")
        out["text_hmac"] = text_hmac(text, hash_key)
    elif text_mode != "drop":
        raise ValueError(f"text_mode {text_mode!r} is not one of {', '.join(TEXT_MODES)}")
    return out


class _Listed(NamedTuple):
    name: str
    mtime: float
    size: int
    inode: tuple[int, int]


class RecordLog:
    """Per-process JSON-lines file: queued writes on a daemon thread, rotation, retention.

    ``on_drop(n)`` is called (on the submitting thread) with the number of records of each
    call that did not fit the queue; ``on_error()`` (on the writer thread) once per call whose
    records could not be written. ``clock`` gives the records' time and the files' age.
    Subclasses turn one queued entry into one JSON object (:meth:`_record`).
    """

    kind = "records"  # in log lines: what this file holds

    def __init__(
        self,
        directory: Path,
        params: TrafficLogParams,
        *,
        name: str,
        on_drop: Callable[[int], None] | None = None,
        on_error: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self.path = self.directory / name
        self.params = params
        self._on_drop = on_drop
        self._on_error = on_error
        self._clock = clock
        self._cond = threading.Condition()
        self._batches: deque[tuple[float, list[Any]]] = deque()
        self._queued = 0  # records queued or being written
        self._closing = False
        self._dropping = False
        self._failing = False
        self._fd: int | None = None
        self._inode = (0, 0)
        self._size = 0
        self._last_sweep = time.monotonic()
        self.sweep()
        self._thread = threading.Thread(
            target=self._run, name=f"record-log-{self.path.name}", daemon=True
        )
        self._thread.start()

    # --- the model thread's side -------------------------------------------------------------

    def submit(self, entries: Sequence[Any]) -> bool:
        """Queue one call's entries (for traffic: ``(text, label, probabilities, version, id)``).

        Never blocks. False (the entries counted by ``on_drop``) when the queue is full or the
        log is closed. A call is taken whole into an empty queue, even past ``queue_size``.
        """
        batch = list(entries)
        if not batch:
            return True
        ts = self._clock()
        with self._cond:
            fits = not self._queued or self._queued + len(batch) <= self.params.queue_size
            if fits and not self._closing:
                self._batches.append((ts, batch))
                self._queued += len(batch)
                self._dropping = False
                self._cond.notify()
                return True
            waiting, first_drop = self._queued, not self._dropping
            self._dropping = True
        if self._closing:
            logger.info("%s log %s is closed: %d record(s) lost.", self.kind, self.path, len(batch))
        elif first_drop:
            logger.warning(
                "%s log %s: queue full (%d records waiting); %d record(s) of a call "
                "not recorded (more may follow, counted). Fix: check the volume behind "
                "TEXTCLF_TRAFFIC_DIR, or raise serve.traffic_log.queue_size.",
                self.kind,
                self.path,
                waiting,
                len(batch),
            )
        if self._on_drop is not None:
            self._on_drop(len(batch))
        return False

    def flush(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Wait until every queued record is written (or failed); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._queued == 0, timeout)

    def close(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Stop taking records, write what is queued (at most ``timeout`` s), stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning(
                "%s log %s: %d record(s) not written within %.1f s of shutdown; lost.",
                self.kind,
                self.path,
                self._queued,
                timeout,
            )

    def files(self) -> list[Path]:
        """This process's current file and its backups, newest first."""
        names = [self.path] + [
            self.path.with_name(f"{self.path.name}.{i}") for i in range(1, self.params.backups + 1)
        ]
        return [p for p in names if p.is_file()]

    # --- retention (any thread) ----------------------------------------------------------------

    def sweep(self) -> list[tuple[str, int]]:
        """Delete traffic files past ``max_age_days``, then the oldest past ``max_total_bytes``.

        Covers every process's ``*.jsonl`` and ``*.jsonl.N`` in the directory; only regular
        files, never through a symlink. Returns the ``(name, bytes)`` deleted (logged at INFO).
        """
        self._last_sweep = time.monotonic()
        try:
            listed = sorted(self._listing(), key=lambda f: (f.mtime, f.name))
        except OSError as err:
            logger.warning("traffic retention: cannot list %s (%s).", self.directory, err)
            return []
        cutoff = self._clock() - self.params.max_age_days * 86400
        deleted: list[tuple[str, int]] = []
        kept: list[_Listed] = []
        for f in listed:
            if f.mtime >= cutoff:
                kept.append(f)
            elif self._delete(f) == "deleted":
                deleted.append((f.name, f.size))
        total = sum(f.size for f in kept)
        for f in kept:  # oldest first
            if total <= self.params.max_total_bytes:
                break
            outcome = self._delete(f)
            if outcome == "deleted":
                deleted.append((f.name, f.size))
            if outcome != "failed":
                total -= f.size
        if deleted:
            logger.info(
                "traffic retention in %s (max %d days, %d bytes): deleted %d file(s), %d bytes: %s",
                self.directory,
                self.params.max_age_days,
                self.params.max_total_bytes,
                len(deleted),
                sum(size for _, size in deleted),
                ", ".join(f"{name} ({size} B)" for name, size in deleted),
            )
        return deleted

    def _listing(self) -> list[_Listed]:
        out = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if not TRAFFIC_FILE.fullmatch(entry.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    out.append(_Listed(entry.name, st.st_mtime, st.st_size, _inode(st)))
        return out

    def _delete(self, f: _Listed) -> Literal["deleted", "gone", "failed"]:
        path = self.directory / f.name
        try:
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode) or _inode(st) != f.inode:
                return "gone"  # renamed or replaced since it was listed (another pod rotated)
            path.unlink()
        except FileNotFoundError:
            return "gone"
        except OSError as err:
            logger.warning("traffic retention: cannot delete %s (%s).", path, err)
            return "failed"
        return "deleted"

    # --- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._batches and not self._closing:
                    due = self._last_sweep + SWEEP_INTERVAL_S - time.monotonic()
                    self._cond.wait(timeout=max(due, 0.0))
                batches = list(self._batches)
                self._batches.clear()
                stop = self._closing and not batches
            if batches:
                self._write(batches)
                with self._cond:
                    self._queued -= sum(len(batch) for _, batch in batches)
                    self._cond.notify_all()
            if time.monotonic() - self._last_sweep >= SWEEP_INTERVAL_S:
                self.sweep()
            if stop:
                self._close_file()
                return

    def _write(self, batches: list[tuple[float, list[Any]]]) -> None:
        try:
            data = b"".join(self._encode(ts, batch) for ts, batch in batches)
            self._append(data)
        except Exception as err:  # never let a bad record or a bad disk stop the writer thread
            self._close_file()
            if not self._failing:
                logger.warning(
                    "%s log %s not written (%s); predictions are still served. Fix: "
                    "check the volume behind TEXTCLF_TRAFFIC_DIR.",
                    self.kind,
                    self.path,
                    err,
                    exc_info=not isinstance(err, OSError),
                )
            self._failing = True
            if self._on_error is not None:
                for _ in batches:
                    self._on_error()
            return
        if self._failing:
            logger.info("%s log %s is written again.", self.kind, self.path)
        self._failing = False

    def _record(self, stamp: datetime, entry: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _encode(self, ts: float, batch: list[Any]) -> bytes:
        stamp = datetime.fromtimestamp(ts, UTC)
        lines = [json.dumps(self._record(stamp, entry), ensure_ascii=False) for entry in batch]
        # A lone surrogate cannot be UTF-8: written as its JSON escape, read back as is.
        return ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")

    def _append(self, data: bytes) -> None:
        fd = self._open()
        if self._size and self._size + len(data) > self.params.max_bytes:
            self._rotate()
            self.sweep()
            fd = self._open()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        self._size += len(data)

    def _open(self) -> int:
        if self._fd is not None and not self._still_there():
            logger.info(
                "%s log %s was deleted (retention); opening a new one.", self.kind, self.path
            )
            self._close_file()
        if self._fd is None:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(self.path, flags, FILE_MODE)
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise OSError(f"{self.path} is not a regular file")
                if st.st_mode & 0o077:  # a file from before, or another umask
                    os.fchmod(fd, FILE_MODE)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._inode, self._size = fd, _inode(st), st.st_size
        return self._fd

    def _still_there(self) -> bool:
        try:
            return _inode(self.path.lstat()) == self._inode
        except OSError:
            return False

    def _close_file(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                logger.debug("closing %s failed", self.path, exc_info=True)
            self._fd = None

    def _rotate(self) -> None:
        self._close_file()
        if self.params.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        # A file may be missing: not rotated yet, or deleted by retention since.
        for i in range(self.params.backups - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                older = self.path.with_name(f"{self.path.name}.{i}")
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        with contextlib.suppress(FileNotFoundError):
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))


def _inode(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


class TrafficLog(RecordLog):
    """The traffic log: one record per classified text (:func:`record`), redacted by text mode."""

    kind = "traffic"

    def __init__(
        self,
        directory: Path,
        params: TrafficLogParams,
        text_mode: str,
        hash_key: bytes | None = None,
        *,
        name: str | None = None,
        on_drop: Callable[[int], None] | None = None,
        on_error: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if text_mode not in TEXT_MODES:
            raise ConfigError(
                f"traffic log text mode {text_mode!r} is invalid. Fix: use one of "
                f"{', '.join(TEXT_MODES)} (serve.traffic_log.text or TEXTCLF_TRAFFIC_TEXT)."
            )
        if text_mode == "hash" and not hash_key:
            raise ConfigError(
                f"traffic log text mode 'hash' needs a key, and {HASH_KEY_ENV} is not set (a "
                "plain, unkeyed hash of a short text is reversed by hashing a dictionary of "
                f"likely texts). Fix: set {HASH_KEY_ENV} from a Kubernetes Secret, or use "
                "the text mode 'drop'."
            )
        self.text_mode = text_mode
        self._key = hash_key if text_mode == "hash" else None
        super().__init__(
            directory,
            params,
            name=name or default_name(),
            on_drop=on_drop,
            on_error=on_error,
            clock=clock,
        )

    def _record(self, stamp: datetime, entry: Entry) -> dict[str, Any]:
        text, label, probs, version, *ident = entry
        return record(
            text,
            label,
            probs,
            version,
            stamp,
            text_mode=self.text_mode,
            hash_key=self._key,
            prediction_id=ident[0] if ident else None,
        )


class FeedbackLog(RecordLog):
    """Feedback beside the traffic log: one :func:`textclf.records.feedback_record` per item."""

    kind = "feedback"

    def __init__(
        self,
        directory: Path,
        params: TrafficLogParams,
        *,
        name: str | None = None,
        on_drop: Callable[[int], None] | None = None,
        on_error: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            directory,
            params,
            name=name or default_name(FEEDBACK_SUFFIX),
            on_drop=on_drop,
            on_error=on_error,
            clock=clock,
        )

    def _record(self, stamp: datetime, entry: FeedbackEntry) -> dict[str, Any]:
        prediction_id, label, predicted, version = entry
        return feedback_record(prediction_id, label, predicted, version, stamp)
