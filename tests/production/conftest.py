"""Fixtures of the production-traffic tests: traffic and feedback as the service writes them, and
one replay of the tiny model over a snapshot whose answers are known by construction.

The replay case: :data:`N` toy texts, answered by "production" with the tiny model's own label
except on the first :data:`CHANGED` of them (there production answered the next label), so
exactly ``CHANGED / N`` of the answers change on replay. Feedback labels the first
:data:`LABELLED` requests so that production is right on exactly half of them and the tiny
model on exactly two thirds (see :func:`truth_for`), whatever labels the tiny model gives.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.exported import TinyExport, exported
from tests.traffic import write_jsonl
from textclf.config.replay import ReplayParams
from textclf.inference import OnnxClassifier
from textclf.monitoring.snapshot import write_snapshot
from textclf.outputs.replay import ReplaySummary
from textclf.records import feedback_record
from textclf.serving import ids
from textclf.serving.traffic import record
from textclf_dev.toy import TOY_LABELS, toy_frame

__all__ = ["exported"]

#: The prediction-id Secret of these tests' "production".
KEY = b"test-only-prediction-id-key-0123456789"
NOW = datetime.now(UTC)
PRODUCTION_VERSION = "prod-v1"

N = 60
CHANGED = 15  # requests 0..14: production answered another label than the tiny model
LABELLED = 30  # requests 0..29 have feedback
PRODUCTION_ACCURACY = 0.5  # by construction (truth_for)
CANDIDATE_ACCURACY = 2 / 3

#: Small and fast: a 200-resample bootstrap, a few timed texts, one thread; fp32 (the tiny
#: export's int8 graph is not held to any agreement with it).
REPLAY = ReplayParams(
    variant="fp32", bootstrap_resamples=200, latency_samples=8, threads=1, examples=5, seed=7
)


def probabilities(label: str, confidence: float = 0.7) -> dict[str, float]:
    """Probabilities over the toy labels with ``confidence`` on ``label``."""
    rest = round((1 - confidence) / (len(TOY_LABELS) - 1), 6)
    return {lab: confidence if lab == label else rest for lab in TOY_LABELS}


def traffic_line(
    text: str,
    label: str,
    *,
    ts: datetime,
    version: str = PRODUCTION_VERSION,
    with_id: bool = True,
    text_mode: str = "keep",
    confidence: float = 0.7,
) -> dict[str, Any]:
    """One traffic record as the service writes it, with a fresh signed id (unless not)."""
    return record(
        text,
        label,
        probabilities(label, confidence),
        version,
        ts,
        text_mode=text_mode,
        hash_key=KEY if text_mode == "hash" else None,
        prediction_id=ids.mint(KEY, version, label) if with_id else None,
    )


def feedback_line(prediction_id: str, label: str, ts: datetime) -> dict[str, Any]:
    """The feedback record the service writes for a true ``label`` of ``prediction_id``."""
    ref = ids.verify(KEY, prediction_id)
    return feedback_record(prediction_id, label, ref.label, ref.model_version, ts)


def shifted(labels: Sequence[str], label: str, by: int) -> str:
    """The label ``by`` places after ``label`` in ``labels`` (cyclically)."""
    return labels[(labels.index(label) + by) % len(labels)]


@dataclass(frozen=True)
class ModelAnswers:
    """The tiny model's own answers to the replay case's texts."""

    texts: list[str]
    labels: list[str]  # the model's label set
    answers: list[str]
    confidence: np.ndarray


def production_for(model: ModelAnswers) -> list[str]:
    """Production's recorded answers: the model's, except the next label on the first CHANGED."""
    return [shifted(model.labels, a, 1) if i < CHANGED else a for i, a in enumerate(model.answers)]


def truth_for(model: ModelAnswers) -> dict[int, str]:
    """Feedback on requests 0..LABELLED-1: production right on 15 of 30, the model on 20."""
    production = production_for(model)
    truth = {}
    for i in range(LABELLED):
        answer = model.answers[i]
        if i < 10:  # changed: the model right, production wrong
            truth[i] = answer
        elif i < CHANGED:  # changed: production right, the model wrong
            truth[i] = production[i]
        elif i < 25:  # unchanged: both right
            truth[i] = answer
        else:  # unchanged: both wrong
            truth[i] = shifted(model.labels, answer, 2)
    return truth


def write_case_traffic(
    directory: Path,
    model: ModelAnswers,
    production: Sequence[str],
    truth: dict[int, str],
    *,
    text_mode: str = "keep",
    name: str = "pod-1",
) -> list[dict[str, Any]]:
    """The case's traffic (``<name>.jsonl``) and feedback (``<name>.feedback.jsonl``) files;
    the traffic records written."""
    start = NOW - timedelta(minutes=30)
    rows = [
        traffic_line(text, label, ts=start + timedelta(seconds=i), text_mode=text_mode)
        for i, (text, label) in enumerate(zip(model.texts, production, strict=True))
    ]
    feedback = [
        feedback_line(rows[i]["id"], label, start + timedelta(seconds=i, minutes=1))
        for i, label in truth.items()
    ]
    write_jsonl(directory / f"{name}.jsonl", rows)
    write_jsonl(directory / f"{name}.feedback.jsonl", feedback)
    return rows


@dataclass(frozen=True)
class ReplayCase:
    """The replay case's inputs, its snapshot and the summary ``replay`` made of it."""

    model: ModelAnswers
    production: list[str]
    truth: dict[int, str]
    traffic_dir: Path
    snapshot: Path
    summary: ReplaySummary


@pytest.fixture(scope="session")
def tiny_model(exported: TinyExport) -> OnnxClassifier:
    """The tiny export's fp32 graph."""
    return OnnxClassifier(exported.onnx_dir, "fp32", threads=1)


@pytest.fixture(scope="session")
def model_answers(tiny_model: OnnxClassifier) -> ModelAnswers:
    """The tiny model's answers to N toy texts (in the batches replay runs them in)."""
    texts = toy_frame(N, seed=11)["text"].tolist()
    probs = tiny_model.predict_proba(texts, REPLAY.batch_size)
    answers = [tiny_model.labels[int(i)] for i in probs.argmax(axis=1)]
    return ModelAnswers(texts, list(tiny_model.labels), answers, probs.max(axis=1))


@pytest.fixture(scope="session")
def replay_case(
    tmp_path_factory: pytest.TempPathFactory, exported: TinyExport, model_answers: ModelAnswers
) -> ReplayCase:
    """The replay case's snapshot, replayed once through the tiny export."""
    from textclf.production.replay import replay

    tmp = tmp_path_factory.mktemp("replay-case")
    production, truth = production_for(model_answers), truth_for(model_answers)
    write_case_traffic(tmp / "traffic", model_answers, production, truth)
    snapshot = write_snapshot(tmp / "traffic", tmp / "snapshot")
    summary = replay(snapshot, exported.onnx_dir, REPLAY, exported.params.slices)
    return ReplayCase(model_answers, production, truth, tmp / "traffic", snapshot, summary)


@pytest.fixture(scope="session")
def replay_params_file(tmp_path_factory: pytest.TempPathFactory, exported: TinyExport) -> Path:
    """A params.yaml: the tiny run's, with the fast fp32 :data:`REPLAY` section."""
    params = json.loads(exported.params.model_dump_json())
    params["replay"] = REPLAY.model_dump()
    path = tmp_path_factory.mktemp("replay-params") / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path
