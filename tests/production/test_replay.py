"""``textclf replay``: the tiny model over a snapshot whose changed answers and live accuracy are
known by construction (tests/production/conftest.py), redacted traffic, and the CLI."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from tests.conftest import REPO
from tests.exported import TinyExport
from tests.production.conftest import (
    CANDIDATE_ACCURACY,
    CHANGED,
    LABELLED,
    NOW,
    PRODUCTION_ACCURACY,
    PRODUCTION_VERSION,
    REPLAY,
    ModelAnswers,
    N,
    ReplayCase,
    feedback_line,
    traffic_line,
    truth_for,
    write_case_traffic,
)
from tests.traffic import write_jsonl
from textclf.errors import DataError
from textclf.monitoring.snapshot import write_snapshot
from textclf.outputs.replay import ReplaySummary
from textclf.production.render import render_markdown
from textclf.production.replay import MARKDOWN_NAME, load_requests, replay, write

TEXTCLF = REPO / ".venv" / "bin" / "textclf"


def _matrix(production: list[str], new: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for p, n in zip(production, new, strict=True):
        counts.setdefault(p, Counter())[n] += 1
    return {p: dict(row) for p, row in counts.items()}


def test_the_changed_share_and_matrix_are_exactly_what_was_recorded(
    replay_case: ReplayCase,
) -> None:
    s, model = replay_case.summary, replay_case.model
    assert (s.requests, s.replayed, s.changed) == (N, N, CHANGED)
    assert s.changed_share == CHANGED / N == 0.25
    assert s.changed_matrix == _matrix(replay_case.production, model.answers)
    off_diagonal = sum(n for p, row in s.changed_matrix.items() for m, n in row.items() if m != p)
    assert off_diagonal == CHANGED
    assert s.model["variant"] == "fp32" and s.model["labels"] == model.labels
    assert s.production_models == {PRODUCTION_VERSION: N}
    assert s.snapshot["requests"] == N and s.snapshot["labelled"] == LABELLED
    assert s.notes == []  # every request kept its text, every feedback label is the model's


def test_live_accuracy_of_production_and_candidate_on_the_labelled_requests(
    replay_case: ReplayCase,
) -> None:
    s, model = replay_case.summary, replay_case.model
    truth = replay_case.truth
    candidate = float(np.mean([model.answers[i] == t for i, t in truth.items()]))
    assert candidate == pytest.approx(CANDIDATE_ACCURACY)  # the construction holds
    assert s.labelled == LABELLED
    assert s.feedback is not None and s.production is not None
    assert s.feedback.requests == LABELLED and s.production.requests == LABELLED
    prod, cand = s.feedback.models["production"], s.feedback.models["candidate"]
    assert prod.accuracy == pytest.approx(PRODUCTION_ACCURACY, abs=1e-12)
    assert cand.accuracy == pytest.approx(candidate, abs=1e-12)
    assert s.feedback.accuracy_delta == pytest.approx(candidate - PRODUCTION_ACCURACY, abs=1e-12)
    assert s.production.models["production"].accuracy == pytest.approx(PRODUCTION_ACCURACY)
    assert set(s.production.models) == {"production"}
    # Macro-F1 over the model's labels, as scikit-learn computes it from the same answers.
    answered = {
        "production": [replay_case.production[i] for i in truth],
        "candidate": [model.answers[i] for i in truth],
    }
    for name, answers in answered.items():
        expected = f1_score(
            list(truth.values()), answers, labels=model.labels, average="macro", zero_division=0
        )
        assert s.feedback.models[name].macro_f1 == pytest.approx(expected, abs=1e-12), name
    # The confusion matrices are true -> answered, over the labelled requests.
    assert prod.confusion == {
        t: dict(sorted(row.items()))
        for t, row in sorted(
            _matrix(list(truth.values()), [replay_case.production[i] for i in truth]).items()
        )
    }
    assert sum(sum(row.values()) for row in cand.confusion.values()) == LABELLED
    # The intervals hold the point estimates, and are intervals (not a point) on 30 requests.
    for scores in (prod, cand):
        assert scores.accuracy_ci.low <= scores.accuracy <= scores.accuracy_ci.high
        assert scores.macro_f1_ci.low <= scores.macro_f1 <= scores.macro_f1_ci.high
        assert scores.accuracy_ci.low < scores.accuracy_ci.high
    ci = s.feedback.accuracy_delta_ci
    assert ci.low <= s.feedback.accuracy_delta <= ci.high
    assert f"{REPLAY.bootstrap_resamples} resamples" in s.feedback.method


def test_slices_partition_the_replayed_requests(
    replay_case: ReplayCase, exported: TinyExport
) -> None:
    s = replay_case.summary
    assert list(s.slices) == list(exported.params.slices.families)
    for family, slices in s.slices.items():
        assert sum(c.requests for c in slices.values()) == s.replayed, family
        assert sum(c.changed for c in slices.values()) == s.changed, family
        for c in slices.values():
            assert c.changed <= c.requests
            assert c.changed_share == (c.changed / c.requests if c.requests else None)


def test_examples_are_the_most_confident_changed_answers(replay_case: ReplayCase) -> None:
    s, model = replay_case.summary, replay_case.model
    assert len(s.examples) == min(REPLAY.examples, CHANGED)
    changed = {model.texts[i]: i for i in range(CHANGED)}
    for e in s.examples:
        assert e.production != e.new
        i = changed[e.text]  # only changed requests are listed
        assert (e.production, e.new) == (replay_case.production[i], model.answers[i])
        assert e.new_confidence == pytest.approx(float(model.confidence[i]), abs=1e-5)
        assert e.production_confidence == pytest.approx(0.7)
        assert e.truth == replay_case.truth[i]
    confidences = [e.new_confidence for e in s.examples]
    assert confidences == sorted(confidences, reverse=True)
    top = sorted((float(model.confidence[i]) for i in range(CHANGED)), reverse=True)
    assert confidences == pytest.approx(top[: REPLAY.examples], abs=1e-5)
    assert s.latency is not None and s.latency.texts == REPLAY.latency_samples


def test_write_gives_a_summary_that_reads_back_and_its_markdown(
    replay_case: ReplayCase, tmp_path: Path
) -> None:
    path = write(replay_case.summary, tmp_path / "out")
    assert path == tmp_path / "out" / "summary.json"
    back = ReplaySummary.read(path)
    assert back == replay_case.summary
    assert json.loads(path.read_text())["changed_share"] == 0.25
    md = (tmp_path / "out" / MARKDOWN_NAME).read_text()
    assert md == render_markdown(replay_case.summary, heading="###")
    assert md.startswith(f"### On {N} recent production requests")


def test_a_traffic_log_directory_replays_as_its_snapshot_does(
    replay_case: ReplayCase, exported: TinyExport
) -> None:
    raw = replay(replay_case.traffic_dir, exported.onnx_dir, REPLAY, exported.params.slices)
    s = replay_case.summary
    assert (raw.requests, raw.changed, raw.changed_matrix) == (
        s.requests,
        s.changed,
        s.changed_matrix,
    )
    assert raw.feedback == s.feedback and raw.production == s.production
    assert raw.snapshot["sha256"] == s.snapshot["sha256"]  # the same joined records


def test_production_answers_equal_to_the_models_change_nothing(
    exported: TinyExport, model_answers: ModelAnswers, tmp_path: Path
) -> None:
    write_case_traffic(tmp_path / "traffic", model_answers, model_answers.answers, {})
    s = replay(tmp_path / "traffic", exported.onnx_dir, REPLAY, exported.params.slices)
    assert (s.requests, s.replayed, s.changed, s.changed_share) == (N, N, 0, 0.0)
    assert all(set(row) == {p} for p, row in s.changed_matrix.items())
    assert sum(sum(row.values()) for row in s.changed_matrix.values()) == N
    assert s.examples == [] and s.feedback is None and s.production is None
    md = render_markdown(s)
    assert "**0.0% of answers change** (0 of 60 replayed requests)." in md
    assert "```mermaid" not in md and "xychart" not in md and "bar [" not in md
    assert "No feedback in this snapshot" in md


def test_requests_without_text_count_for_production_only(
    exported: TinyExport, model_answers: ModelAnswers, tmp_path: Path
) -> None:
    truth = truth_for(model_answers)
    traffic = tmp_path / "traffic"
    write_case_traffic(traffic, model_answers, model_answers.answers, truth)
    # Ten more, recorded by a pod in the 'drop' text mode, all labelled, production always right.
    dropped = [
        traffic_line(f"never kept {i}", "negative", ts=NOW - timedelta(minutes=5), text_mode="drop")
        for i in range(10)
    ]
    write_jsonl(traffic / "pod-2.jsonl", dropped)
    write_jsonl(
        traffic / "pod-2.feedback.jsonl",
        [feedback_line(r["id"], "negative", NOW) for r in dropped],
    )
    s = replay(traffic, exported.onnx_dir, REPLAY, exported.params.slices)  # a traffic-log dir
    assert (s.requests, s.replayed, s.changed, s.changed_share) == (N + 10, N, 0, 0.0)
    assert s.labelled == LABELLED + 10
    assert s.production is not None and s.production.requests == LABELLED + 10
    right = sum(t == model_answers.answers[i] for i, t in truth.items()) + 10
    assert s.production.models["production"].accuracy == pytest.approx(right / (LABELLED + 10))
    assert s.feedback is not None and s.feedback.requests == LABELLED  # those with text only
    assert any("10 of 70 requests were recorded without their text" in n for n in s.notes)


def test_a_snapshot_without_any_text_replays_nothing_but_scores_production(
    exported: TinyExport, model_answers: ModelAnswers, tmp_path: Path
) -> None:
    truth = truth_for(model_answers)
    write_case_traffic(
        tmp_path / "traffic", model_answers, model_answers.answers, truth, text_mode="drop"
    )
    snapshot = write_snapshot(tmp_path / "traffic", tmp_path / "snap")
    requests, manifest = load_requests(snapshot)
    assert len(requests) == N and all(r.text is None for r in requests)
    assert manifest["with_text"] == 0 and manifest["labelled"] == LABELLED

    s = replay(snapshot, exported.onnx_dir, REPLAY, exported.params.slices)
    assert (s.requests, s.replayed, s.changed) == (N, 0, 0)
    assert s.changed_share is None and s.changed_matrix == {} and s.slices == {}
    assert s.examples == [] and s.latency is None and s.feedback is None
    assert s.production is not None and s.production.requests == LABELLED
    right = sum(t == model_answers.answers[i] for i, t in truth.items())
    assert s.production.models["production"].accuracy == pytest.approx(right / LABELLED)
    assert any(f"{N} of {N} requests were recorded without their text" in n for n in s.notes)
    md = render_markdown(s)
    assert "nothing to replay" in md and "cannot be scored on them" in md


def test_feedback_labels_the_model_lacks_are_scored_wrong_and_noted(
    exported: TinyExport, model_answers: ModelAnswers, tmp_path: Path
) -> None:
    truth = {0: "sarcastic", 1: model_answers.answers[1]}
    write_case_traffic(tmp_path / "traffic", model_answers, model_answers.answers, truth)
    s = replay(tmp_path / "traffic", exported.onnx_dir, REPLAY, exported.params.slices)
    assert s.feedback is not None
    assert s.feedback.models["candidate"].accuracy == 0.5
    assert s.feedback.models["production"].accuracy == 0.5
    assert any("sarcastic" in n and "never right" in n for n in s.notes)


def _cli(*args: str) -> dict[str, object]:
    proc = subprocess.run(
        [str(TEXTCLF), "replay", *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(proc.stdout))


def test_the_cli_writes_the_summary_with_live_accuracy(
    replay_case: ReplayCase, exported: TinyExport, replay_params_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    printed = _cli(
        "--traffic",
        str(replay_case.snapshot),
        "--model-dir",
        str(exported.onnx_dir),
        "--params",
        str(replay_params_file),
        "--out",
        str(out),
    )
    assert printed["summary"] == str(out / "summary.json")
    assert printed["requests"] == N and printed["changed_share"] == 0.25
    assert printed["production_accuracy"] == pytest.approx(PRODUCTION_ACCURACY)
    raw = json.loads((out / "summary.json").read_text())
    assert raw["requests"] == N and raw["changed_share"] == 0.25
    assert raw["model"]["variant"] == "fp32"  # the params file's replay.variant
    models = raw["feedback"]["models"]
    assert models["production"]["accuracy"] == pytest.approx(PRODUCTION_ACCURACY)
    assert models["candidate"]["accuracy"] == pytest.approx(CANDIDATE_ACCURACY)
    assert (out / MARKDOWN_NAME).is_file()
    # The same figures as the function gives: the CLI replays what `replay` replays.
    assert ReplaySummary.read(out / "summary.json").changed_matrix == (
        replay_case.summary.changed_matrix
    )


def test_a_missing_traffic_directory_is_a_clear_error(exported: TinyExport, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist.*dvc pull traffic.dvc"):
        replay(tmp_path / "traffic", exported.onnx_dir, REPLAY, exported.params.slices)
