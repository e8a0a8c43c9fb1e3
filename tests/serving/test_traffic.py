"""Recorded traffic: v2 records per text mode, 0600 files, rotation, retention, the writer queue."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import pytest

from tests.serving.conftest import SERVE
from textclf.config.serve import TrafficLogParams
from textclf.errors import ConfigError
from textclf.monitoring.slices import text_features
from textclf.records import is_feedback_file
from textclf.serving.settings import load_settings
from textclf.serving.traffic import TEXT_MODES, TrafficLog, default_name, record
from textclf.text_features import FEATURES, FLAG_FAMILIES

BASE_KEYS = {"v", "ts", "label", "probabilities", "model_version", "features"}
KEY = b"k" * 32
PROBS = {"negative": 0.25, "positive": 0.75}
DAY = 86400.0
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")
HEX64 = re.compile(r"[0-9a-f]{64}")


def _params(**overrides: Any) -> TrafficLogParams:
    return TrafficLogParams(**{"max_bytes": 1 << 20, "backups": 1, **overrides})


@pytest.fixture
def open_log(tmp_path: Path) -> Iterator[Callable[..., TrafficLog]]:
    """``open_log(name=..., text_mode=..., **params)``: a TrafficLog in tmp_path, closed after."""
    logs: list[TrafficLog] = []

    def make(
        name: str = "pod-1.jsonl",
        text_mode: str = "keep",
        directory: Path | None = None,
        hash_key: bytes | None = None,
        **params: Any,
    ) -> TrafficLog:
        log = TrafficLog(
            directory or tmp_path,
            _params(**params),
            text_mode,
            hash_key if hash_key is not None else (KEY if text_mode == "hash" else None),
            name=name,
        )
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.close()


def _entries(texts: list[str]) -> list[tuple[str, str, dict[str, float], str]]:
    return [(t, "positive", dict(PROBS), "v1") for t in texts]


def _write(log: TrafficLog, texts: list[str]) -> None:
    assert log.submit(_entries(texts))
    assert log.flush(2.0)


def _lines(paths: list[Path]) -> list[dict[str, Any]]:
    # Split on "\n" only, as the drift check reads them: a text may hold U+2028 or U+0085, which
    # JSON leaves unescaped and str.splitlines() would split on.
    return [json.loads(line) for p in paths for line in p.read_text("utf-8").split("\n")[:-1]]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _traffic_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.jsonl*") if p.is_file())


# --- records ----------------------------------------------------------------------------------


def test_file_name_is_unique_per_host_and_process() -> None:
    assert default_name().endswith(f"-{os.getpid()}.jsonl")


def test_text_modes_are_the_params_choices() -> None:
    assert get_args(TrafficLogParams.model_fields["text"].annotation) == TEXT_MODES


@pytest.mark.parametrize("mode", TEXT_MODES)
def test_each_text_mode_writes_its_record_and_no_more(
    mode: str, open_log: Callable[..., TrafficLog]
) -> None:
    secret = f"secret passenger {uuid.uuid4().hex} ✈"
    log = open_log(text_mode=mode)
    _write(log, [secret, "second text"])
    raw = log.path.read_bytes()
    first, second = _lines([log.path])
    extra = {"keep": {"text"}, "hash": {"text_hmac"}, "drop": set()}[mode]
    assert set(first) == BASE_KEYS | extra
    assert first["v"] == 2
    assert TS.fullmatch(first["ts"])
    assert (first["label"], first["probabilities"], first["model_version"]) == (
        "positive",
        PROBS,
        "v1",
    )
    assert list(first["features"]) == list(FEATURES)
    # The raw bytes hold the text only in keep mode (the positive control of this grep).
    assert (secret.encode() in raw) is (mode == "keep")
    assert (b"second text" in raw) is (mode == "keep")
    assert KEY not in raw
    if mode == "keep":
        assert (first["text"], second["text"]) == (secret, "second text")
    if mode == "hash":
        expected = hmac.new(KEY, secret.encode("utf-8"), hashlib.sha256).hexdigest()
        assert first["text_hmac"] == expected
        assert HEX64.fullmatch(second["text_hmac"])
        assert first["text_hmac"] != second["text_hmac"]
        # Keyed: another key gives another digest, so a dictionary needs the key too.
        other = hmac.new(b"x" * 32, secret.encode("utf-8"), hashlib.sha256).hexdigest()
        assert first["text_hmac"] != other


def test_the_text_never_reaches_the_logs(
    open_log: Callable[..., TrafficLog], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="textclf.serving.traffic")
    secret = f"private {uuid.uuid4().hex}"
    log = open_log(text_mode="hash", max_bytes=1024, backups=1, max_total_bytes=2048)
    (tmp_path / "old.jsonl").write_text("x" * 2000)
    os.utime(tmp_path / "old.jsonl", (time.time() - 40 * DAY,) * 2)
    for _ in range(12):
        _write(log, [secret + " " + "y" * 80])  # rotates and sweeps: both log at INFO
    assert "old.jsonl (2000 B)" in caplog.text  # the sweep did log
    assert secret not in caplog.text
    assert KEY.decode() not in caplog.text


def test_features_are_the_reference_profile_features(open_log: Callable[..., TrafficLog]) -> None:
    texts = [
        "see https://t.co/x1 now",
        "@united lost my bag",
        "so #blessed 😀",
        "flight #12 on&#39;time, email me@example.com",
        " \t ",
        "¡Qué 123 día!",
        "line\u2028separator",
    ]
    log = open_log()
    _write(log, texts)
    recorded = [r["features"] for r in _lines([log.path])]
    reference = text_features(texts)
    assert list(reference.columns) == list(FEATURES)
    assert set(FEATURES) == {"chars", "words", "non_letter_share", *FLAG_FAMILIES}
    expected = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in reference.to_dict("records")
    ]
    assert recorded == expected
    # The same types as the profile's columns: ints, a float and booleans.
    assert [type(v) for v in recorded[2].values()] == [int, int, float, bool, bool, bool, bool]
    assert sum(r["has_emoji"] for r in recorded) == 1  # not all equal by accident


def test_a_lone_surrogate_is_written_as_valid_utf8(open_log: Callable[..., TrafficLog]) -> None:
    log = open_log()
    _write(log, ["broken \ud800 pair"])
    log.path.read_bytes().decode("utf-8")  # strict: valid UTF-8
    assert _lines([log.path])[0]["text"] == "broken \ud800 pair"


def test_record_builds_the_same_line_as_the_log() -> None:
    line = record("hi @you", "positive", dict(PROBS), "v1", text_mode="drop")
    assert set(line) == BASE_KEYS
    assert line["features"]["has_mention"] is True


# --- the hash key and the text mode setting -----------------------------------------------------


def test_hash_mode_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TEXTCLF_TRAFFIC_HASH_KEY.*Fix:"):
        TrafficLog(tmp_path, _params(), "hash")
    with pytest.raises(ConfigError, match="'hide' is invalid. Fix:"):
        TrafficLog(tmp_path, _params(), "hide")


def _serve_file(tmp_path: Path, text: str = "keep") -> Path:
    path = tmp_path / "serve.yaml"
    path.write_text(json.dumps({"traffic_log": {"text": text}}), "utf-8")
    return path


def test_settings_resolve_the_text_mode_and_key(tmp_path: Path) -> None:
    env = {"TEXTCLF_SERVE_FILE": str(_serve_file(tmp_path, "hash")), "TEXTCLF_MODEL_DIR": "/m"}
    recording = {**env, "TEXTCLF_TRAFFIC_DIR": str(tmp_path / "t")}
    with pytest.raises(ConfigError) as err:
        load_settings(recording)
    message = str(err.value)
    assert "traffic_log.text = hash" in message
    assert "TEXTCLF_TRAFFIC_HASH_KEY is not set" in message
    assert "dictionary" in message
    assert "Fix:" in message
    with pytest.raises(ConfigError, match="under 16.*Fix:"):
        load_settings({**recording, "TEXTCLF_TRAFFIC_HASH_KEY": "short"})
    key = "s3cret-" + "z" * 25
    settings = load_settings({**recording, "TEXTCLF_TRAFFIC_HASH_KEY": key})
    assert (settings.traffic_text, settings.traffic_hash_key) == ("hash", key.encode())
    assert key not in repr(settings)
    # Not recording: no key needed. The environment overrides serve.yaml either way.
    assert load_settings(env).traffic_text == "hash"
    assert load_settings({**recording, "TEXTCLF_TRAFFIC_TEXT": "drop"}).traffic_text == "drop"
    keep_file = {**recording, "TEXTCLF_SERVE_FILE": str(_serve_file(tmp_path, "keep"))}
    assert load_settings(keep_file).traffic_text == "keep"
    with pytest.raises(ConfigError, match="TEXTCLF_TRAFFIC_TEXT=hash, but"):
        load_settings({**keep_file, "TEXTCLF_TRAFFIC_TEXT": "hash"})
    with pytest.raises(ConfigError, match="TEXTCLF_TRAFFIC_TEXT='plain' is invalid. Fix:"):
        load_settings({**env, "TEXTCLF_TRAFFIC_TEXT": "plain"})


def test_the_total_must_hold_one_process_files() -> None:
    with pytest.raises(ValueError, match=r"max_bytes x \(backups \+ 1\) = 3072.*Fix:"):
        TrafficLogParams(max_bytes=1024, backups=2, max_total_bytes=3071)
    assert TrafficLogParams(max_bytes=1024, backups=2, max_total_bytes=3072).backups == 2


# --- files: mode, rotation --------------------------------------------------------------------


def test_files_are_0600_and_a_new_directory_0700(
    tmp_path: Path, open_log: Callable[..., TrafficLog]
) -> None:
    directory = tmp_path / "made" / "traffic"
    old_umask = os.umask(0)  # what a plain open() would then create: 0666
    try:
        log = open_log(directory=directory, max_bytes=1024, backups=2)
        for i in range(30):
            _write(log, [f"{i:03d} " + "x" * 100])
    finally:
        os.umask(old_umask)
    assert _mode(directory) == 0o700
    files = log.files()
    assert [p.name for p in files] == ["pod-1.jsonl", "pod-1.jsonl.1", "pod-1.jsonl.2"]
    assert {_mode(p) for p in files} == {0o600}
    # Negative control: the same umask makes an ordinary file world-readable.
    os.umask(0)
    try:
        (directory / "control.txt").write_text("x")
    finally:
        os.umask(old_umask)
    assert _mode(directory / "control.txt") == 0o666


def test_an_existing_file_is_made_0600(tmp_path: Path, open_log: Callable[..., TrafficLog]) -> None:
    (tmp_path / "pod-1.jsonl").write_text("")
    (tmp_path / "pod-1.jsonl").chmod(0o644)
    _write(open_log(), ["a"])
    assert _mode(tmp_path / "pod-1.jsonl") == 0o600


def test_rotation_keeps_n_backups_within_the_size_bound(
    open_log: Callable[..., TrafficLog], tmp_path: Path
) -> None:
    log = open_log(max_bytes=1024, backups=2)
    for i in range(40):
        _write(log, [f"{i:03d}" + "x" * 97])
    files = log.files()
    assert [p.name for p in files] == ["pod-1.jsonl", "pod-1.jsonl.1", "pod-1.jsonl.2"]
    assert not (tmp_path / "pod-1.jsonl.3").exists()
    assert all(p.stat().st_size <= 1024 for p in files)
    texts = [r["text"][:3] for r in _lines(files[::-1])]  # oldest backup first
    assert texts == sorted(texts)  # order is kept across files
    assert texts[-1] == "039"  # the newest record is in the current file
    assert len(texts) < 40  # the oldest went with the rotation


def test_zero_backups_truncates(open_log: Callable[..., TrafficLog]) -> None:
    log = open_log(name="t.jsonl", max_bytes=1024, backups=0)
    for i in range(30):
        _write(log, [f"text {i} " + "y" * 80])
    assert [p.name for p in log.files()] == ["t.jsonl"]
    assert _lines(log.files())[-1]["text"].startswith("text 29 ")


# --- retention --------------------------------------------------------------------------------


def _age(path: Path, days: float) -> None:
    stamp = time.time() - days * DAY
    os.utime(path, (stamp, stamp), follow_symlinks=False)


def test_retention_by_age_covers_every_pods_files_and_nothing_else(
    tmp_path: Path, open_log: Callable[..., TrafficLog]
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.jsonl"
    outside.write_text("not ours\n")
    for name in ["gone-1.jsonl", "gone-1.jsonl.3", "other-77.jsonl.1", "young-2.jsonl"]:
        (tmp_path / name).write_text('{"v": 2}\n')
    for name in ["notes.txt", "x.jsonl.bak", "x.jsonl.1.gz"]:
        (tmp_path / name).write_text("keep me\n")
    (tmp_path / "dir.jsonl").mkdir()
    (tmp_path / "link.jsonl").symlink_to(outside)
    for path in tmp_path.iterdir():
        _age(path, 31)
    _age(outside, 31)
    _age(tmp_path / "young-2.jsonl", 29)
    open_log(max_age_days=30)  # the sweep at start
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [
        "dir.jsonl",
        "link.jsonl",
        "notes.txt",
        "x.jsonl.1.gz",
        "x.jsonl.bak",
        "young-2.jsonl",  # the negative control: 29 days is under the limit
    ]
    assert outside.read_text() == "not ours\n"  # a symlink is not followed
    outside.unlink()


def test_retention_keeps_the_total_across_restarts(tmp_path: Path) -> None:
    """Pods come and go, each leaving its files; the directory stays under max_total_bytes."""
    params = _params(max_bytes=1024, backups=2, max_total_bytes=6 * 1024, max_age_days=30)
    base = time.time() - 3600
    after_start, left_behind = [], 0
    for pod in range(8):
        log = TrafficLog(tmp_path, params, "keep", name=f"pod-{pod}.jsonl")
        after_start.append(_traffic_bytes(tmp_path))  # right after the sweep at start
        if pod == 1:
            assert not list(tmp_path.glob("pod-0.*"))  # 31 days old: gone, though under the size
        for i in range(25):
            _write(log, [f"pod {pod} text {i} " + "z" * 100])  # ~4 KB: rotates
        log.close()
        left_behind += sum(p.stat().st_size for p in log.files())
        stamp = time.time() - 31 * DAY if pod == 0 else base + pod * 60
        for path in log.files():  # each pod's files are older than the next one's
            os.utime(path, (stamp, stamp))
    assert max(after_start) <= params.max_total_bytes
    assert left_behind > 2 * params.max_total_bytes  # the limit did have to delete
    pods = {p.name.split(".jsonl")[0] for p in tmp_path.glob("*.jsonl*")}
    assert "pod-1" not in pods  # the oldest go first ...
    assert {"pod-6", "pod-7"} <= pods  # ... the newest stay
    TrafficLog(tmp_path, params, "drop", name="pod-8.jsonl").close()
    assert 0 < _traffic_bytes(tmp_path) <= params.max_total_bytes


def test_a_deleted_live_file_is_recreated(
    tmp_path: Path, open_log: Callable[..., TrafficLog]
) -> None:
    log = open_log(max_bytes=1024, backups=1, max_total_bytes=2048)
    _write(log, ["before"])
    log.path.unlink()  # as another pod's retention would
    _write(log, ["after"])
    assert [r["text"] for r in _lines([log.path])] == ["after"]
    assert _mode(log.path) == 0o600
    # The same through another pod's sweep under size pressure: the live file is the oldest.
    _age(log.path, 1)
    other = open_log(name="pod-2.jsonl", max_bytes=1024, backups=1, max_total_bytes=2048)
    (tmp_path / "big.jsonl").write_text("b" * 2000)
    assert "pod-1.jsonl" in [name for name, _ in other.sweep()]
    assert not log.path.exists()
    _write(log, ["again"])
    assert [r["text"] for r in _lines([log.path])] == ["again"]


# --- the writer thread ------------------------------------------------------------------------


def _block_writer(log: TrafficLog, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """Make the writer thread wait in its next write until ``release`` is set."""
    entered, release = threading.Event(), threading.Event()
    write = log._write

    def blocked(batches: Any) -> None:
        entered.set()
        assert release.wait(5)
        write(batches)

    monkeypatch.setattr(log, "_write", blocked)
    return entered, release


def test_a_full_queue_drops_and_counts_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped: list[int] = []
    log = TrafficLog(
        tmp_path, _params(queue_size=10), "keep", name="q.jsonl", on_drop=dropped.append
    )
    entered, release = _block_writer(log, monkeypatch)
    assert log.submit(_entries([f"a{i}" for i in range(5)]))
    assert entered.wait(2)  # the writer holds the first call
    assert log.submit(_entries([f"b{i}" for i in range(5)]))  # 10 records: still fits
    start = time.perf_counter()
    assert not log.submit(_entries(["c0", "c1", "c2"]))
    assert not log.submit(_entries(["d0"]))
    assert time.perf_counter() - start < 0.05
    assert dropped == [3, 1]
    release.set()
    assert log.flush(2)
    assert log.submit(_entries(["e0"]))  # room again
    log.close()
    texts = [r["text"] for r in _lines([log.path])]
    assert texts == [*(f"a{i}" for i in range(5)), *(f"b{i}" for i in range(5)), "e0"]
    assert dropped == [3, 1]


def test_one_call_larger_than_the_queue_is_taken_when_empty(tmp_path: Path) -> None:
    log = TrafficLog(tmp_path, _params(queue_size=2), "drop", name="q.jsonl")
    assert log.submit(_entries(["a", "b", "c"]))
    log.close()
    assert len(_lines([log.path])) == 3


def test_close_drains_the_queue_and_bounds_its_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    log = TrafficLog(tmp_path, _params(), "keep", name="c.jsonl")
    entered, release = _block_writer(log, monkeypatch)
    for i in range(5):
        assert log.submit(_entries([f"t{i}"]))
    assert entered.wait(2)
    assert not log.path.exists()  # nothing written yet: the drain below is what writes
    threading.Timer(0.1, release.set).start()
    log.close(timeout=2)
    assert [r["text"] for r in _lines([log.path])] == [f"t{i}" for i in range(5)]
    assert not log.submit(_entries(["late"]))  # closed
    # A writer stuck past the timeout: close returns, says what was lost.
    stuck = TrafficLog(tmp_path, _params(), "keep", name="s.jsonl")
    entered, release = _block_writer(stuck, monkeypatch)
    assert stuck.submit(_entries(["x", "y"]))
    assert entered.wait(2)
    start = time.perf_counter()
    stuck.close(timeout=0.2)
    assert time.perf_counter() - start < 1
    assert "2 record(s) not written within 0.2 s" in caplog.text
    release.set()


def test_write_errors_are_reported_once_per_streak(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[None] = []
    log = TrafficLog(
        tmp_path, _params(), "keep", name="t.jsonl", on_error=lambda: errors.append(None)
    )
    log.path.mkdir()  # a directory where the file should be: every open fails
    for text in ["a", "b", "c"]:
        assert log.submit(_entries([text]))  # queued: the failure is the writer's
        assert log.flush(2)
    assert len(errors) == 3
    assert caplog.text.count("not written") == 1
    assert "Fix: check the volume behind TEXTCLF_TRAFFIC_DIR" in caplog.text
    log.path.rmdir()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="textclf.serving.traffic"):
        _write(log, ["d"])
    assert "is written again" in caplog.text
    log.close()
    assert [r["text"] for r in _lines([log.path])] == ["d"]
    assert len(errors) == 3


@pytest.mark.parametrize("mode", TEXT_MODES)
def test_the_drift_check_reads_every_record_back(mode: str, tmp_path: Path) -> None:
    from textclf.monitoring.drift import read_traffic

    texts = ["plain", "line\u2028separator", "next\x85line", "emoji 😀 and café", 'quote " \\']
    log = TrafficLog(tmp_path, _params(), mode, KEY if mode == "hash" else None)
    _write(log, texts)
    log.close()
    frame = read_traffic(tmp_path, labels=["negative", "positive"])
    assert frame["chars"].tolist() == [len(t) for t in texts]  # the features drift is run on
    assert frame["prediction"].tolist() == ["positive"] * len(texts)
    if mode == "keep":
        assert frame["text"].tolist() == texts
        assert [r["text"] for r in _lines(log.files())] == texts


# --- the service ------------------------------------------------------------------------------


def _wait_for(traffic: Path, text: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The records in ``traffic`` once one has ``text`` (the service writes off its thread)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = _lines(sorted(traffic.glob("*.jsonl*")))
        if any(r.get("text") == text for r in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def test_the_service_records_every_prediction(client: Any, serve_env: dict[str, str]) -> None:
    traffic = Path(serve_env["TEXTCLF_TRAFFIC_DIR"])
    texts = ["traffic test one", "traffic test two"]
    resp = client.post("/predict", json={"texts": texts})
    assert resp.status_code == 200
    rows = _wait_for(traffic, texts[-1])
    logged = {r["text"]: r for r in rows if r.get("text") in texts}
    assert set(logged) == set(texts)
    assert {_mode(p) for p in traffic.glob("*.jsonl*")} == {0o600}
    for pred, text in zip(resp.json(), texts, strict=True):
        assert set(logged[text]) == BASE_KEYS | {"id", "text"}
        assert logged[text]["id"] == pred["id"]  # feedback for this id joins to this record
        assert logged[text]["label"] == pred["label"]
        assert logged[text]["probabilities"] == pytest.approx(pred["probabilities"])
        assert logged[text]["model_version"] == pred["model_version"]
    # A request rejected by validation never reaches the model, so none of its texts is logged
    # (a text no other test sends: the log holds every earlier test's predictions too).
    valid_part = f"rejected batch {uuid.uuid4().hex}"
    rejected = client.post("/predict", json={"texts": [valid_part, ""]})
    assert rejected.status_code == 400
    marker = f"accepted after {uuid.uuid4().hex}"
    assert client.post("/predict", json={"texts": [marker]}).status_code == 200
    rows = _wait_for(traffic, marker)
    assert any(r.get("text") == marker for r in rows)  # written: the check below is not vacuous
    assert not any(r.get("text") == valid_part for r in rows)


def test_the_service_rotates_its_file(client: Any, serve_env: dict[str, str]) -> None:
    traffic = Path(serve_env["TEXTCLF_TRAFFIC_DIR"])
    limit, backups = SERVE["traffic_log"]["max_bytes"], SERVE["traffic_log"]["backups"]
    for i in range(12):
        body = {"texts": [f"rotation {i} {j} " + "z" * 150 for j in range(4)]}
        assert client.post("/predict", json=body).status_code == 200
    _wait_for(traffic, "rotation 11 3 " + "z" * 150)
    files = sorted(p for p in traffic.glob("*.jsonl*") if not is_feedback_file(p.name))
    stems = {p.name.split(".jsonl")[0] for p in files}
    assert len(stems) == 1  # one process, one file family
    assert len(files) == backups + 1
    assert all(p.stat().st_size <= limit for p in files)
