"""Recorded traffic and feedback: file names and the feedback record, shared by writer and readers.

The service writes both (:mod:`textclf.serving.traffic`); the drift job, ``textclf snapshot``
and ``textclf replay`` read them (:mod:`textclf.monitoring.snapshot`). Traffic files are
``<hostname>-<pid>.jsonl`` (rotated ``.jsonl.N``), feedback files
``<hostname>-<pid>.feedback.jsonl`` in the same directory, under the same retention. A
feedback line (format version 1)::

    {"v": 1, "ts": "2024-05-01T12:00:03.456+00:00", "id": "p1.<version>.<label>.<nonce>.<mac>",
     "label": "negative", "predicted": "positive", "model_version": "<content hash>",
     "correct": false}

``label`` is the label the client says is true; ``predicted`` and ``model_version`` are what the
(verified) id says was answered. It holds no text, so the traffic log's text mode has nothing
to redact in it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

TRAFFIC_VERSION = 2
FEEDBACK_VERSION = 1
FEEDBACK_SUFFIX = ".feedback.jsonl"
#: Traffic and feedback files, current and rotated: what retention manages.
RECORD_FILE = re.compile(r".+\.jsonl(?:\.\d+)?")
FEEDBACK_FILE = re.compile(r".+\.feedback\.jsonl(?:\.\d+)?")


def is_feedback_file(name: str) -> bool:
    """Whether a file name is a (current or rotated) feedback file."""
    return FEEDBACK_FILE.fullmatch(name) is not None


def feedback_record(
    prediction_id: str,
    label: str,
    predicted: str,
    model_version: str,
    ts: datetime | None = None,
) -> dict[str, Any]:
    """One feedback line: the true ``label`` a client sent for the prediction ``prediction_id``."""
    return {
        "v": FEEDBACK_VERSION,
        "ts": (ts or datetime.now(UTC)).isoformat(timespec="milliseconds"),
        "id": prediction_id,
        "label": label,
        "predicted": predicted,
        "model_version": model_version,
        "correct": label == predicted,
    }
