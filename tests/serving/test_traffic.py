"""Recorded traffic: one JSON line per classified text, per-process files, size-bounded rotation."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import SERVE
from textclf.serving.traffic import TrafficLog, default_name, record

KEYS = {"ts", "text", "label", "probabilities", "model_version"}


def _lines(paths: list[Path]) -> list[dict[str, Any]]:
    # Split on "\n" only, as the drift check reads them: a text may hold U+2028 or U+0085, which
    # JSON leaves unescaped and str.splitlines() would split on.
    return [json.loads(line) for p in paths for line in p.read_text("utf-8").split("\n")[:-1]]


def test_file_name_is_unique_per_host_and_process() -> None:
    assert default_name().endswith(f"-{os.getpid()}.jsonl")


def test_rotation_keeps_n_backups_within_the_size_bound(tmp_path: Path) -> None:
    log = TrafficLog(tmp_path, max_bytes=1024, backups=2, name="pod-1.jsonl")
    rec = record("x" * 100, "positive", {"negative": 0.1, "positive": 0.9}, "abc123")
    size = len(json.dumps(rec, ensure_ascii=False)) + 1
    for i in range(40):
        assert log.write([{**rec, "text": f"{i:03d}" + "x" * 97}])
    log.close()
    files = log.files()
    assert [p.name for p in files] == ["pod-1.jsonl", "pod-1.jsonl.1", "pod-1.jsonl.2"]
    assert not (tmp_path / "pod-1.jsonl.3").exists()
    assert all(p.stat().st_size <= 1024 for p in files)
    texts = [r["text"][:3] for r in _lines(files[::-1])]  # oldest backup first
    assert texts == sorted(texts)  # order is kept across files
    assert texts[-1] == "039"  # the newest record is in the current file
    assert len(texts) == sum(p.stat().st_size for p in files) // size


def test_zero_backups_truncates(tmp_path: Path) -> None:
    log = TrafficLog(tmp_path, max_bytes=1024, backups=0, name="t.jsonl")
    for i in range(30):
        log.write([record(f"text {i} " + "y" * 80, "neutral", {"neutral": 1.0}, "v")])
    log.close()
    assert [p.name for p in log.files()] == ["t.jsonl"]
    assert _lines(log.files())[-1]["text"].startswith("text 29 ")


def test_an_unwritable_directory_is_reported_not_raised(tmp_path: Path) -> None:
    log = TrafficLog(tmp_path, max_bytes=1024, backups=1, name="t.jsonl")
    log.path.mkdir()  # a directory where the file should be: every open fails
    assert log.write([record("a", "neutral", {"neutral": 1.0}, "v")]) is False


def test_the_service_records_every_prediction(client: Any, serve_env: dict[str, str]) -> None:
    traffic = Path(serve_env["TEXTCLF_TRAFFIC_DIR"])
    texts = ["traffic test one", "traffic test two"]
    resp = client.post("/predict", json={"texts": texts})
    assert resp.status_code == 200
    rows = _lines(sorted(traffic.glob("*.jsonl*")))
    logged = {r["text"]: r for r in rows if r["text"] in texts}
    assert set(logged) == set(texts)
    for pred, text in zip(resp.json(), texts, strict=True):
        assert set(logged[text]) == KEYS
        assert logged[text]["label"] == pred["label"]
        assert logged[text]["probabilities"] == pytest.approx(pred["probabilities"])
        assert logged[text]["model_version"] == pred["model_version"]
    # A request rejected by validation never reaches the model, so none of its texts is logged
    # (a text no other test sends: the log holds every earlier test's predictions too).
    valid_part = f"rejected batch {uuid.uuid4().hex}"
    rejected = client.post("/predict", json={"texts": [valid_part, ""]})
    assert rejected.status_code == 400
    assert not any(r["text"] == valid_part for r in _lines(sorted(traffic.glob("*.jsonl*"))))


def test_the_service_rotates_its_file(client: Any, serve_env: dict[str, str]) -> None:
    traffic = Path(serve_env["TEXTCLF_TRAFFIC_DIR"])
    limit, backups = SERVE["traffic_log"]["max_bytes"], SERVE["traffic_log"]["backups"]
    for i in range(12):
        body = {"texts": [f"rotation {i} {j} " + "z" * 150 for j in range(4)]}
        assert client.post("/predict", json=body).status_code == 200
    files = sorted(traffic.glob("*.jsonl*"))
    stems = {p.name.split(".jsonl")[0] for p in files}
    assert len(stems) == 1  # one process, one file family
    assert len(files) == backups + 1
    assert all(p.stat().st_size <= limit for p in files)


def test_the_drift_check_reads_every_record_back(tmp_path: Path) -> None:
    from textclf.monitoring.drift import read_traffic

    texts = ["plain", "line\u2028separator", "next\x85line", "emoji 😀 and café", 'quote " \\']
    log = TrafficLog(tmp_path, max_bytes=1 << 20, backups=1)
    assert log.write(
        record(t, "positive", {"negative": 0.25, "positive": 0.75}, "v1") for t in texts
    )
    log.close()
    frame = read_traffic(tmp_path, labels=["negative", "positive"])
    assert frame["text"].tolist() == texts
    assert [r["text"] for r in _lines(log.files())] == texts
