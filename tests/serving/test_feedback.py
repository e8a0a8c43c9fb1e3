"""``POST /feedback``: round trip, every rejected input, duplicates, metrics, the feedback log."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from tests.serving.conftest import PREDICTION_ID_KEY, SERVE
from textclf.config.serve import TrafficLogParams
from textclf.records import FEEDBACK_SUFFIX, FEEDBACK_VERSION, feedback_record, is_feedback_file
from textclf.serving import feedback as fb
from textclf.serving import ids
from textclf.serving.traffic import FeedbackLog, TrafficLog, default_name

MAX_ITEMS = cast(int, SERVE["max_batch_size"])
KEY = PREDICTION_ID_KEY.encode()
RECORD_KEYS = {"v", "ts", "id", "label", "predicted", "model_version", "correct"}
FEEDBACK = "textclf_feedback_total"
DUPLICATES = "textclf_feedback_duplicates_total"
LABEL_PAIR = re.compile(r'(\w+)="([^"]*)"')


# --- helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def traffic(client: Any, serve_env: dict[str, str]) -> Iterator[Path]:
    """The service's traffic directory; its feedback files are removed after this module, so the
    traffic tests that count the files in it find only the traffic log's."""
    directory = Path(serve_env["TEXTCLF_TRAFFIC_DIR"])
    yield directory
    for path in directory.iterdir():
        if is_feedback_file(path.name):
            path.unlink()


def _post(client: Any, path: str, body: Any) -> Any:
    """POST ``body`` as JSON (``None`` is sent as the JSON ``null``)."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def _predict(client: Any, *texts: str) -> list[dict[str, Any]]:
    resp = _post(client, "/predict", {"texts": list(texts)})
    assert resp.status_code == 200, resp.text
    return list(resp.json())


def _feedback(client: Any, *items: tuple[str, str]) -> Any:
    return _post(client, "/feedback", {"items": [{"id": i, "label": lab} for i, lab in items]})


def _other_label(pred: dict[str, Any]) -> str:
    return next(lab for lab in pred["probabilities"] if lab != pred["label"])


def _records(traffic: Path) -> list[dict[str, Any]]:
    paths = sorted(p for p in traffic.iterdir() if is_feedback_file(p.name))
    return [json.loads(line) for p in paths for line in p.read_text("utf-8").split("\n")[:-1]]


def _wait_for(traffic: Path, prediction_id: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The feedback records once one has ``prediction_id`` (written off the request thread)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = _records(traffic)
        if any(r["id"] == prediction_id for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def _samples(client: Any, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """``{label set: value}`` of every sample of metric ``name`` on /metrics."""
    out = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            series, value = line.rsplit(" ", 1)
            out[frozenset(LABEL_PAIR.findall(series))] = float(value)
    return out


def _counted(client: Any, **labels: str) -> float:
    """The sum of ``textclf_feedback_total`` over the series that have ``labels``."""
    want = set(labels.items())
    return sum(v for k, v in _samples(client, FEEDBACK).items() if want <= k)


def _duplicates(client: Any) -> float:
    return sum(_samples(client, DUPLICATES).values())


# --- the round trip -----------------------------------------------------------------------------


@pytest.mark.parametrize("correct", [True, False])
def test_feedback_for_a_prediction_is_counted_and_recorded(
    client: Any, traffic: Path, correct: bool
) -> None:
    (pred,) = _predict(client, "the flight was delayed again")
    label = pred["label"] if correct else _other_label(pred)
    series = {
        "label": label,
        "predicted": pred["label"],
        "correct": str(correct).lower(),
        "model_version": pred["model_version"],
    }
    before = _counted(client, **series)

    resp = _feedback(client, (pred["id"], label))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 1, "duplicates": 0}

    rows = [r for r in _wait_for(traffic, pred["id"]) if r["id"] == pred["id"]]
    assert len(rows) == 1
    (row,) = rows
    assert set(row) == RECORD_KEYS
    assert row["v"] == FEEDBACK_VERSION
    assert (row["label"], row["predicted"], row["model_version"]) == (
        label,
        pred["label"],
        pred["model_version"],
    )
    assert row["correct"] is correct
    assert _counted(client, **series) == before + 1
    files = [p for p in traffic.iterdir() if is_feedback_file(p.name)]
    assert default_name(FEEDBACK_SUFFIX) in [p.name for p in files]  # and its rotations, if any
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}


def test_a_request_of_several_items_counts_each(client: Any, traffic: Path) -> None:
    preds = _predict(client, *[f"several items {i}" for i in range(MAX_ITEMS)])
    resp = _feedback(client, *[(p["id"], p["label"]) for p in preds])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": MAX_ITEMS, "duplicates": 0}
    rows = _wait_for(traffic, preds[-1]["id"])
    assert {r["id"] for r in rows} >= {p["id"] for p in preds}


def test_feedback_for_an_older_model_version_is_counted_under_it(
    client: Any, traffic: Path
) -> None:
    """An id another model version issued (same key: a rollout in progress) is accepted."""
    (pred,) = _predict(client, "the current model")
    old = "0123456789ab"
    assert old != pred["model_version"]
    pid = ids.mint(KEY, old, "positive")
    resp = _feedback(client, (pid, "negative"))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 1, "duplicates": 0}
    assert _counted(
        client, label="negative", predicted="positive", correct="false", model_version=old
    ) == pytest.approx(1)
    (row,) = [r for r in _wait_for(traffic, pid) if r["id"] == pid]
    assert (row["model_version"], row["predicted"], row["correct"]) == (old, "positive", False)


def test_an_id_already_given_feedback_is_a_duplicate(client: Any, traffic: Path) -> None:
    first, second = _predict(client, "duplicate one", "duplicate two")
    assert _feedback(client, (first["id"], first["label"])).json() == {
        "accepted": 1,
        "duplicates": 0,
    }
    _wait_for(traffic, first["id"])
    counted, duplicates = _counted(client), _duplicates(client)

    # Re-sent, even with another label: answered, not counted or written again.
    again = _feedback(client, (first["id"], _other_label(first)))
    assert again.status_code == 200, again.text
    assert again.json() == {"accepted": 0, "duplicates": 1}
    assert (_counted(client), _duplicates(client)) == (counted, duplicates + 1)

    mixed = _feedback(client, (second["id"], second["label"]), (first["id"], first["label"]))
    assert mixed.json() == {"accepted": 1, "duplicates": 1}
    rows = _wait_for(traffic, second["id"])
    assert [r["id"] for r in rows].count(first["id"]) == 1
    assert [r["id"] for r in rows].count(second["id"]) == 1
    assert (_counted(client), _duplicates(client)) == (counted + 1, duplicates + 2)


# --- rejected requests --------------------------------------------------------------------------


def _valid(pid: str) -> dict[str, str]:
    return {"id": pid, "label": "positive"}


def _tampered(pid: str) -> str:
    """The id with one character of its nonce changed (same shape, the mac no longer fits)."""
    head, nonce, mac = pid.rsplit(".", 2)
    return f"{head}.{('1' if nonce[0] == '0' else '0') + nonce[1:]}.{mac}"


# (name, body from a fresh valid id, fragments of the message); bodies holding the valid id at
# items[0] also show that the valid part of a rejected request is not recorded.
Body = Callable[[str], Any]
STRUCTURAL: list[tuple[str, Body, list[str]]] = [
    ("not an object", lambda pid: [_valid(pid)], ["body must be a JSON object, got array"]),
    ("null body", lambda pid: None, ["body must be a JSON object, got null"]),
    ("missing items", lambda pid: {}, ["has no 'items' key"]),
    (
        "unknown key",
        lambda pid: {"items": [_valid(pid)], "model": "x"},
        ["unknown key(s) ['model']"],
    ),
    ("items not a list", lambda pid: {"items": _valid(pid)}, ["'items' must be a JSON array"]),
    ("empty list", lambda pid: {"items": []}, ["'items' is empty"]),
    (
        "too many items",
        lambda pid: {
            "items": [_valid(pid)] + [_valid(f"{pid}{i}") for i in range(MAX_ITEMS)],
        },
        [f"has {MAX_ITEMS + 1} items; at most {MAX_ITEMS}", "Fix: split"],
    ),
    (
        "item not an object",
        lambda pid: {"items": [_valid(pid), "an id"]},
        ["items[1] must be an object, got string"],
    ),
    (
        "missing id",
        lambda pid: {"items": [_valid(pid), {"label": "positive"}]},
        ["items[1] has no id"],
    ),
    ("missing label", lambda pid: {"items": [_valid(pid), {"id": "x"}]}, ["items[1] has no label"]),
    ("missing both", lambda pid: {"items": [{}]}, ["items[0] has no id or label"]),
    (
        "extra key",
        lambda pid: {"items": [_valid(pid), {**_valid("x"), "score": 1}]},
        ["items[1] has unknown key(s) ['score']"],
    ),
    (
        "non-string id",
        lambda pid: {"items": [_valid(pid), {"id": 3, "label": "positive"}]},
        ["items[1].id must be a non-empty string, got number"],
    ),
    (
        "null label",
        lambda pid: {"items": [_valid(pid), {"id": "x", "label": None}]},
        ["items[1].label must be a non-empty string, got null"],
    ),
    (
        "empty label",
        lambda pid: {"items": [_valid(pid), {"id": "x", "label": ""}]},
        ["items[1].label must be a non-empty string, got string"],
    ),
    (
        "whitespace id",
        lambda pid: {"items": [_valid(pid), {"id": " \t", "label": "positive"}]},
        ["items[1].id must be a non-empty string"],
    ),
    (
        "too long id",
        lambda pid: {"items": [_valid(pid), {"id": "p" * (fb.MAX_ID_CHARS + 1), "label": "x"}]},
        [f"items[1].id has {fb.MAX_ID_CHARS + 1} characters; at most {fb.MAX_ID_CHARS}"],
    ),
    (
        "too long label",
        lambda pid: {"items": [_valid(pid), {"id": "x", "label": "l" * (fb.MAX_LABEL_CHARS + 1)}]},
        [f"items[1].label has {fb.MAX_LABEL_CHARS + 1} characters; at most {fb.MAX_LABEL_CHARS}"],
    ),
    (
        "same id twice",
        lambda pid: {"items": [_valid(pid), {"id": pid, "label": "negative"}]},
        ["items[1].id repeats items[0].id"],
    ),
]
SEMANTIC: list[tuple[str, Body, list[str]]] = [
    (
        "forged id",
        lambda pid: {
            "items": [_valid(pid), _valid(ids.mint(b"another-key-of-16+bytes", "v1", "positive"))]
        },
        ["items[1].id is not a prediction id of this deployment", "signature does not match"],
    ),
    (
        "tampered id",
        lambda pid: {"items": [_valid(pid), _valid(_tampered(pid))]},
        ["items[1].id is not a prediction id of this deployment", "signature does not match"],
    ),
    (
        "not an id",
        lambda pid: {"items": [_valid(pid), _valid("not-a-prediction-id")]},
        ["items[1].id is not a prediction id of this deployment", "expected p1."],
    ),
    (
        "unknown label",
        lambda pid: {
            "items": [_valid(pid), {"id": ids.mint(KEY, "v1", "x"), "label": "sarcastic"}]
        },
        [
            "items[1].label 'sarcastic' is not one of the model's labels "
            "(negative, neutral, positive)"
        ],
    ),
]


def _rejected_and_nothing_recorded(
    client: Any, traffic: Path, make: Body, expected: list[str]
) -> str:
    """Send the invalid body; assert a 400 with nothing counted or recorded; the message."""
    (pred,) = _predict(client, "a prediction for a rejected request")
    counted, duplicates = _counted(client), _duplicates(client)
    resp = _post(client, "/feedback", make(pred["id"]))
    assert resp.status_code == 400, resp.text
    body = resp.json()
    # Validation errors are in "detail" (BentoML's), the service's own in "error" alone.
    message = " ".join(d["msg"] for d in body["detail"]) if "detail" in body else body["error"]
    for fragment in [*expected, "Fix:"]:
        assert fragment in message, message
    assert (_counted(client), _duplicates(client)) == (counted, duplicates)
    # The valid id of the request was not taken either: it is accepted now, and recorded once.
    assert _feedback(client, (pred["id"], "positive")).json() == {"accepted": 1, "duplicates": 0}
    rows = _wait_for(traffic, pred["id"])
    assert [r["id"] for r in rows].count(pred["id"]) == 1
    return str(message)


@pytest.mark.parametrize(
    ("make", "expected"), [(m, e) for _, m, e in STRUCTURAL], ids=[n for n, _, _ in STRUCTURAL]
)
def test_a_malformed_request_is_a_400_naming_the_item_and_the_fix(
    client: Any, traffic: Path, make: Body, expected: list[str]
) -> None:
    message = _rejected_and_nothing_recorded(client, traffic, make, expected)
    assert message.startswith("Value error, ")  # pydantic's: like /predict's validation errors


@pytest.mark.parametrize(
    ("make", "expected"), [(m, e) for _, m, e in SEMANTIC], ids=[n for n, _, _ in SEMANTIC]
)
def test_an_id_or_label_the_deployment_cannot_accept_is_a_400_naming_the_item(
    client: Any, traffic: Path, make: Body, expected: list[str]
) -> None:
    _rejected_and_nothing_recorded(client, traffic, make, expected)


def test_a_tampered_id_differs_in_one_character_only() -> None:
    """The tampered-id case above is what it says: a real id, one character changed."""
    pid = ids.mint(KEY, "v1", "positive")
    altered = _tampered(pid)
    assert len(altered) == len(pid)
    assert sum(a != b for a, b in zip(pid, altered, strict=True)) == 1
    with pytest.raises(ids.InvalidIdError):
        ids.verify(KEY, altered)


def test_feedback_other_media_types_are_415(client: Any) -> None:
    resp = client.post("/feedback", content=b"id=x&label=y", headers={"content-type": "text/plain"})
    assert resp.status_code == 415, resp.text
    assert "Fix:" in resp.text


# --- metrics and schema -------------------------------------------------------------------------


def test_the_metrics_expose_feedback_by_its_four_labels(client: Any, traffic: Path) -> None:
    (pred,) = _predict(client, "metrics of feedback")
    assert _feedback(client, (pred["id"], pred["label"])).status_code == 200
    text = client.get("/metrics").text
    assert f"{FEEDBACK}{{" in text
    names = {name for series in _samples(client, FEEDBACK) for name, _ in series}
    assert names == {"label", "predicted", "correct", "model_version"}
    assert {dict(s)["correct"] for s in _samples(client, FEEDBACK)} <= {"true", "false"}
    requests = _samples(client, "bentoml_service_request_total")
    assert any(
        ("endpoint", "/feedback") in k and ("http_response_code", "200") in k for k in requests
    )


def test_openapi_documents_the_feedback_body(client: Any) -> None:
    spec = client.get("/docs.json").json()
    body = spec["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]
    items = body["schema"]["properties"]["items"]
    assert (items["minItems"], items["maxItems"]) == (1, MAX_ITEMS)
    assert body["schema"]["additionalProperties"] is False
    assert body["schema"]["example"] == fb.EXAMPLE


# --- feedback.py and FeedbackLog, in process ----------------------------------------------------


def test_judge_returns_what_each_id_says_was_predicted() -> None:
    pid = ids.mint(KEY, "abc", "neutral")
    items = [fb.FeedbackItem(id=pid, label="positive")]
    assert fb.judge(items, KEY, ["negative", "neutral", "positive"]) == [
        (pid, "positive", "neutral", "abc")
    ]
    with pytest.raises(fb.FeedbackError, match=r"items\[0\]\.id is not a prediction id.*Fix:"):
        fb.judge(items, b"another-key-of-16+bytes", ["positive"])
    with pytest.raises(fb.FeedbackError, match=r"items\[0\]\.label 'positive' is not one.*Fix:"):
        fb.judge(items, KEY, ["negative", "neutral"])


def test_check_items_accepts_the_limit_and_names_the_first_bad_item() -> None:
    good = [{"id": f"id{i}", "label": "x"} for i in range(MAX_ITEMS)]
    assert fb.check_items(good, MAX_ITEMS) == good
    with pytest.raises(ValueError, match=r"^items\[2\] has no label"):
        fb.check_items([*good[:2], {"id": "z"}, {"id": 1}], MAX_ITEMS)


def test_recent_ids_evict_the_oldest_beyond_their_size() -> None:
    recent = fb.RecentIds(size=2)
    assert recent.add("a") and recent.add("b")
    assert not recent.add("a")  # a duplicate, and now the most recent
    assert recent.add("c")  # evicts b, the oldest
    assert not recent.add("a") and not recent.add("c")
    assert recent.add("b")  # forgotten, so new again (evicts a)
    assert recent.add("a")


def _params(**overrides: Any) -> TrafficLogParams:
    return TrafficLogParams(**{"max_bytes": 1 << 20, "backups": 1, **overrides})


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").split("\n")[:-1]]


def test_the_feedback_log_writes_one_record_per_item(tmp_path: Path) -> None:
    stamp = 1_714_564_800.0  # 2024-05-01T12:00:00Z
    log = FeedbackLog(tmp_path, _params(), clock=lambda: stamp)
    assert log.path.name.endswith(f"-{os.getpid()}.feedback.jsonl")
    assert is_feedback_file(log.path.name)
    entries = [("id-1", "negative", "positive", "v1"), ("id-2", "positive", "positive", "v2")]
    assert log.submit(entries)
    assert log.flush(2.0)
    log.close()
    rows = _lines(log.path)
    assert rows == [
        {
            "v": 1,
            "ts": "2024-05-01T12:00:00.000+00:00",
            "id": "id-1",
            "label": "negative",
            "predicted": "positive",
            "model_version": "v1",
            "correct": False,
        },
        {
            "v": 1,
            "ts": "2024-05-01T12:00:00.000+00:00",
            "id": "id-2",
            "label": "positive",
            "predicted": "positive",
            "model_version": "v2",
            "correct": True,
        },
    ]
    assert rows[0] == feedback_record(
        "id-1", "negative", "positive", "v1", datetime.fromtimestamp(stamp, UTC)
    )
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_retention_covers_feedback_files(tmp_path: Path) -> None:
    old = [tmp_path / "pod-9.feedback.jsonl", tmp_path / "pod-9.feedback.jsonl.1"]
    for path in old:
        path.write_text('{"v": 1}\n', "utf-8")
        os.utime(path, (time.time() - 40 * 86400,) * 2)
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("kept", "utf-8")
    os.utime(unrelated, (time.time() - 40 * 86400,) * 2)
    log = FeedbackLog(tmp_path, _params(max_age_days=30))  # sweeps at start
    log.close()
    assert not any(p.exists() for p in old)
    assert unrelated.exists()


# --- the drift reader -----------------------------------------------------------------------------


def _traffic_and_feedback(directory: Path) -> None:
    traffic = TrafficLog(directory, _params(), "keep", name="pod-1.jsonl")
    assert traffic.submit(
        [(t, "positive", {"negative": 0.2, "positive": 0.8}, "v1", "id") for t in ("a", "b")]
    )
    traffic.close()
    feedback = FeedbackLog(directory, _params(), name="pod-1.feedback.jsonl")
    assert feedback.submit([("id", "negative", "positive", "v1")])
    feedback.close()


def test_the_drift_reader_ignores_feedback_files(tmp_path: Path) -> None:
    from textclf.monitoring.drift import scan_traffic, traffic_files

    _traffic_and_feedback(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pod-1.feedback.jsonl", "pod-1.jsonl"]
    assert [p.name for p in traffic_files(tmp_path)] == ["pod-1.jsonl"]
    scan = scan_traffic(tmp_path, ["negative", "positive"])
    assert (scan.files, scan.rows, scan.n_skipped) == (["pod-1.jsonl"], 2, 0)


def test_a_feedback_line_named_like_traffic_would_be_skipped(tmp_path: Path) -> None:
    """Negative control of the test above: the feedback line is not a valid traffic line."""
    from textclf.monitoring.drift import scan_traffic

    _traffic_and_feedback(tmp_path)
    (tmp_path / "pod-1.feedback.jsonl").rename(tmp_path / "pod-2.jsonl")
    scan = scan_traffic(tmp_path, ["negative", "positive"])
    assert (scan.rows, scan.n_skipped) == (2, 1)
    assert dict(scan.skipped) == {"bad_probabilities": 1}
