"""Retrain proposals: train-only rows (the pinned test split), the new rows of a snapshot, and
`textclf retrain propose` end to end (a branch on a bare git remote, the pipeline reproduced)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.conftest import tiny_params
from textclf.config.params import parse_params
from textclf.data.load import load_dataset
from textclf.data.split import deduplicate, new_rows, split
from textclf.errors import ConfigError
from textclf.monitoring.snapshot import write_snapshot
from textclf.outputs.prepare import PrepareSummary
from textclf.paths import Paths
from textclf.production.replay import Request
from textclf.production.retrain import LOSES, Proposal, candidates, labelled_rows, render_body
from textclf.records import feedback_record
from textclf.serving import ids
from textclf.serving.traffic import record
from textclf.stages import prepare
from textclf_dev.toy import TOY_LABELS, toy_frame

KEY = b"retrain-test-key-0123456789abcdef"  # pragma: allowlist secret
BIN = Path(sys.executable).parent
SPLITS = ("train", "val", "test", "reference")


# --- train-only rows: the test split stays pinned ------------------------------------------


def _before(root: Path, params: Any) -> dict[str, pd.DataFrame]:
    """The splits of the code path before train-only rows existed: load, dedup, split."""
    deduped, _ = deduplicate(load_dataset(root, params.data), params.prepare.conflicting_labels)
    return {n: p[["row", "text", "label"]] for n, p in split(deduped, params.prepare).items()}


def _written(root: Path) -> dict[str, pd.DataFrame]:
    return {n: pd.read_parquet(Paths(root).split(n)) for n in SPLITS}


def test_no_train_only_files_give_the_splits_of_before_byte_for_byte(
    toy_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    params = parse_params(tiny_params())
    assert params.data.train_only_paths == []
    summary = prepare.run(params, Paths(toy_root))
    expected = _before(toy_root, params)
    out = tmp_path_factory.mktemp("before")
    for name in SPLITS:
        pd.testing.assert_frame_equal(_written(toy_root)[name], expected[name])
        expected[name].to_parquet(out / f"{name}.parquet", index=False)  # as prepare wrote it
        assert (out / f"{name}.parquet").read_bytes() == Paths(toy_root).split(name).read_bytes()
    assert "train_only" not in summary
    assert "train_only" not in json.loads(Paths(toy_root).data_summary.read_text())


def _extra(root: Path, test_text: str, train_text: str) -> tuple[Path, list[str]]:
    """data/extra.csv: 20 new rows, a copy of one of them, a test text and a train text (both
    written differently: case and spacing), in the corpus's columns."""
    new = toy_frame(20, seed=99).assign(text=lambda f: f["text"] + " fresh")
    rows = pd.concat(
        [
            new,
            new.iloc[[3]].assign(text=lambda f: f["text"].str.upper()),
            pd.DataFrame(
                {"text": [f"  {test_text.upper()} ", train_text], "label": ["neutral"] * 2}
            ),
        ],
        ignore_index=True,
    )
    path = root / "data" / "extra.csv"
    rows.to_csv(path, index=False, encoding="utf-8")
    return path, new["text"].tolist()


def test_train_only_rows_join_train_only_and_a_test_text_never_leaks(toy_root: Path) -> None:
    plain = parse_params(tiny_params(prepare={"max_train_rows": 150}))
    before = _before(toy_root, plain)
    test_text, train_text = before["test"]["text"][0], before["train"]["text"][0]
    _, fresh = _extra(toy_root, test_text, train_text)
    params = parse_params(
        tiny_params(data={"train_only_paths": ["data/extra.csv"]}, prepare={"max_train_rows": 150})
    )
    summary = prepare.run(params, Paths(toy_root))
    after = _written(toy_root)
    for name in ("val", "test", "reference"):
        pd.testing.assert_frame_equal(after[name], before[name])
    # Train grows by exactly the 20 new texts, after the cap (none sampled out), rows past the file.
    assert len(before["train"]) == 150 and len(after["train"]) == 170
    pd.testing.assert_frame_equal(after["train"].iloc[:150], before["train"])
    added = after["train"].iloc[150:]
    assert added["text"].tolist() == fresh
    assert added["row"].tolist() == list(range(301, 321))
    assert test_text not in set(after["train"]["text"])  # dropped: no leakage
    assert summary["train_only"]["rows_read"] == 23
    assert summary["train_only"]["duplicates_removed"] == 3
    assert summary["train_only"]["already_in_corpus"] == 2
    assert summary["train_only"]["rows_added"] == 20
    assert summary["splits"]["train"]["rows"] == 170
    assert set(summary["train_only"]["sources"]) == {"data/extra.csv"}
    assert PrepareSummary.read(Paths(toy_root).data_summary).train_only is not None


def test_a_summary_without_train_only_still_reads() -> None:
    old = {
        "source": "data/x.csv", "source_md5": "0", "rows_raw": 1, "duplicates_removed": 0,
        "conflicting_texts": 0, "conflicting_rows_removed": 0, "rows_after_dedup": 1,
        "splits": {},
    }  # fmt: skip
    assert PrepareSummary.parse(old, "old").train_only is None


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["extra.csv"], "not a file inside data/"),
        (["data/../x.csv"], "not a file inside data/"),
        (["data/a.csv", "data/a.csv"], "repeated"),
        (["data/toy.csv"], "also in train_only_paths"),
    ],
)
def test_train_only_paths_must_be_other_files_inside_data(paths: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_params(tiny_params(data={"train_only_paths": paths}))


# --- the new rows of a snapshot ------------------------------------------------------------


def test_new_rows_drop_copies_and_known_texts_as_prepare_compares_them() -> None:
    existing = pd.DataFrame({"text": ["Hello  world", "known"], "label": ["a", "b"]})
    cands = pd.DataFrame(
        {
            "text": ["hello world", "new one", "NEW   one", "clash", "Clash", "fresh"],
            "label": ["a", "a", "a", "a", "b", "b"],
            "row": range(1, 7),
        }
    )
    kept, stats = new_rows(cands, existing, "drop")
    assert kept["text"].tolist() == ["new one", "fresh"]
    assert (stats.rows_read, stats.duplicates_removed, stats.already_present) == (6, 2, 1)
    assert (stats.conflicting_rows_removed, stats.rows_added) == (2, 2)
    kept, _ = new_rows(cands, existing, "first")
    assert kept["text"].tolist() == ["new one", "clash", "fresh"]


def test_candidates_are_labelled_requests_with_text_the_data_lacks(toy_root: Path) -> None:
    corpus = pd.read_csv(toy_root / "data" / "toy.csv")
    extra = pd.DataFrame({"text": ["already proposed"], "label": ["positive"]})
    extra.to_csv(toy_root / "data" / "prod.csv", index=False)
    params = parse_params(tiny_params(data={"train_only_paths": ["data/prod.csv"]}))
    requests = [
        Request("brand new text", "neutral", 0.9, "m1", "positive"),  # kept
        Request("Brand  NEW text", "neutral", 0.9, "m1", "positive"),  # a copy of it
        Request(corpus["text"][5].upper(), "neutral", 0.9, "m1", "neutral"),  # in the corpus
        Request("already proposed", "neutral", 0.9, "m1", "positive"),  # in a train-only file
        Request(None, "neutral", 0.9, "m1", "positive"),  # text not kept
        Request("unlabelled", "neutral", 0.9, "m1", None),
        Request("odd label", "neutral", 0.9, "m1", "sarcastic"),
        Request("   ", "neutral", 0.9, "m1", "positive"),
    ]
    frame, unknown = labelled_rows(requests, TOY_LABELS)
    assert unknown == 1 and len(frame) == 4
    found = candidates(requests, toy_root, params)
    assert found.rows.to_dict("records") == [{"text": "brand new text", "label": "positive"}]
    assert found.counts() == {
        "labelled": 7,
        "labelled_with_text": 5,
        "unknown_label": 1,
        "duplicates_removed": 3,
        "already_in_data": 2,
        "conflicting_rows_removed": 0,
        "new_rows": 1,
    }


def test_the_body_says_first_when_the_proposal_loses_to_main() -> None:
    counts = {
        "labelled": 9, "labelled_with_text": 8, "unknown_label": 0, "duplicates_removed": 1,
        "already_in_data": 1, "conflicting_rows_removed": 0, "new_rows": 7,
    }  # fmt: skip
    window = {"first_ts": "2025-01-01T00:00:00+00:00", "last_ts": "2025-01-02T00:00:00+00:00"}
    p = Proposal(
        True, 7, 5, counts, "20250102T041700Z", window, branch="retrain/2025-01-02",
        data_file="data/production/20250102T041700Z.csv", beats_main=False,
        test_split_unchanged=True, main={"macro_f1": 0.8, "accuracy": 0.82},
        proposal={"macro_f1": 0.75, "accuracy": 0.8},
    )  # fmt: skip
    md = render_body(p, "## Monitor: drift\n\nthe findings", (100, 107))
    assert md.startswith(f"## {LOSES}")
    assert "7 new rows from snapshot `20250102T041700Z`" in md
    assert "2025-01-01T00:00:00+00:00 .. 2025-01-02T00:00:00+00:00" in md
    assert "| test macro-F1 | 0.8000 | **0.7500** | -0.0500 |" in md
    assert "Test split: unchanged" in md and "the findings" in md and "100 → 107" in md
    winning = render_body(
        Proposal(
            **{**p.to_json(), "beats_main": True, "proposal": {"macro_f1": 0.9, "accuracy": 0.9}}
        ),
        None,
        None,
    )
    assert LOSES not in winning and winning.startswith("# Retrain on 7")


# --- the command ---------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}


def _sh(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=1800)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def make_snapshot(tmp: Path, frame: pd.DataFrame, labelled: int) -> Path:
    """A snapshot of ``frame``'s texts answered by model m1; the first ``labelled`` of them
    labelled by users with ``frame``'s label."""
    logs = tmp / "logs"
    logs.mkdir(parents=True)
    start = datetime.now(UTC) - timedelta(hours=2)
    traffic, feedback = [], []
    for i, (text, truth) in enumerate(zip(frame["text"], frame["label"], strict=True)):
        answer = TOY_LABELS[i % len(TOY_LABELS)]
        pid = ids.mint(KEY, "m1", answer)
        probs = {lab: (0.8 if lab == answer else 0.1) for lab in TOY_LABELS}
        ts = start + timedelta(seconds=i)
        traffic.append(record(text, answer, probs, "m1", ts, prediction_id=pid))
        if i < labelled:
            feedback.append(feedback_record(pid, truth, answer, "m1", ts))
    (logs / "pod.jsonl").write_text("".join(json.dumps(r) + "\n" for r in traffic))
    (logs / "pod.feedback.jsonl").write_text("".join(json.dumps(r) + "\n" for r in feedback))
    return write_snapshot(logs, tmp / "20250131T041700Z")


def _git_repo(root: Path, min_labels: int) -> None:
    """``root`` (toy data) as a committed git repo with params.yaml for the toy corpus."""
    params = tiny_params(monitor={"retrain_min_labels": min_labels})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / ".gitignore").write_text("/data/\n/tiny\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "user.email", "t@example.com"],
        ["config", "user.name", "t"],
        ["add", "-A"],
        ["commit", "-qm", "project"],
    ):
        _sh(["git", *args], root)


def _propose(root: Path, snapshot: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _sh(
        ["textclf", "retrain", "propose", "--traffic", str(snapshot), "--remote", "origin", *extra],
        root,
        check=False,
    )


def _branches(root: Path) -> list[str]:
    return _sh(["git", "branch", "--list", "retrain/*"], root).stdout.split()


def test_too_few_new_labels_propose_nothing(
    toy_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _git_repo(toy_root, min_labels=50)
    corpus = pd.read_csv(toy_root / "data" / "toy.csv")
    frame = pd.concat(
        [toy_frame(30, seed=7).assign(text=lambda f: f["text"] + " prod"), corpus.head(40)],
        ignore_index=True,
    )  # 70 labelled, but 40 of them are in the data already: 30 new < 50
    snapshot = make_snapshot(tmp_path_factory.mktemp("traffic"), frame, labelled=70)
    head = _sh(["git", "rev-parse", "HEAD"], toy_root).stdout
    done = _propose(toy_root, snapshot)
    assert done.returncode == 0, done.stderr
    assert "30 new labelled rows, fewer than monitor.retrain_min_labels = 50" in done.stderr
    assert json.loads(done.stdout)["proposed"] is False
    result = json.loads((toy_root / "reports" / "retrain" / "result.json").read_text())
    assert (result["proposed"], result["rows"], result["needed"]) == (False, 30, 50)
    assert result["counts"]["already_in_data"] == 40
    assert _branches(toy_root) == []
    assert _sh(["git", "rev-parse", "HEAD"], toy_root).stdout == head
    assert not (toy_root / "data" / "production").exists()


def test_a_dirty_tree_or_an_existing_branch_fails_and_touches_nothing(
    toy_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Negative control of the test above: enough rows, but the repository is not ready."""
    _git_repo(toy_root, min_labels=10)
    frame = toy_frame(20, seed=7).assign(text=lambda f: f["text"] + " prod")
    snapshot = make_snapshot(tmp_path_factory.mktemp("traffic"), frame, labelled=20)
    (toy_root / "notes.txt").write_text("uncommitted")
    done = _propose(toy_root, snapshot)
    assert done.returncode == 2
    assert "is not clean (notes.txt)" in done.stderr and "Fix: commit or remove" in done.stderr
    (toy_root / "notes.txt").unlink()
    branch = f"retrain/{datetime.now(UTC):%Y-%m-%d}"
    _sh(["git", "branch", branch], toy_root)
    done = _propose(toy_root, snapshot)
    assert done.returncode == 2
    assert f"branch {branch} exists already (locally)" in done.stderr
    assert _sh(["git", "symbolic-ref", "--short", "HEAD"], toy_root).stdout.strip() == "main"
    assert not (toy_root / "data" / "production").exists()
    assert yaml.safe_load((toy_root / "params.yaml").read_text())["data"].get(
        "train_only_paths"
    ) in (None, [])


@pytest.mark.slow
def test_propose_pushes_a_reproduced_retrain_branch_and_leaves_main_alone(
    tmp_path_factory: pytest.TempPathFactory, tiny_backbone: Path
) -> None:
    from dvc.utils.serialize import modify_yaml

    from tests.e2e.test_pipeline import make_project_repo

    root, _ = make_project_repo(tmp_path_factory, tiny_backbone, epochs=2)
    with modify_yaml(root / "params.yaml") as doc:
        doc["monitor"]["retrain_min_labels"] = 40
    _sh(["dvc", "repro"], root)
    _sh(["git", "add", "-A"], root)
    _sh(["git", "commit", "-qm", "baseline model"], root)
    bare = tmp_path_factory.mktemp("origin") / "repo.git"
    _sh(["git", "init", "-q", "--bare", str(bare)], root)
    _sh(["git", "remote", "add", "origin", str(bare)], root)
    _sh(["git", "push", "-q", "origin", "main"], root)
    main_sha = _sh(["git", "rev-parse", "main"], root).stdout.strip()
    main_test = pd.read_parquet(root / "artifacts" / "prepared" / "test.parquet")
    main_train = pd.read_parquet(root / "artifacts" / "prepared" / "train.parquet")
    # The monitor's findings, as the workflow's judge leaves them (never committed).
    (root / "reports" / "monitor").mkdir(parents=True)
    (root / "reports" / "monitor" / "summary.md").write_text("## Production monitor: drift\n")

    corpus = pd.read_csv(root / "data" / "toy.csv")
    new = toy_frame(60, seed=11).assign(text=lambda f: f["text"] + " production")
    test_rows = main_test[main_test["row"] > 5].head(3)  # not among the corpus copies below
    test_copy = test_rows[["text", "label"]].assign(text=lambda f: f["text"].str.upper())
    frame = pd.concat([new, corpus.head(5), test_copy], ignore_index=True)
    snapshot = make_snapshot(tmp_path_factory.mktemp("traffic"), frame, labelled=len(frame))

    done = _propose(root, snapshot)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((root / "reports" / "retrain" / "result.json").read_text())
    branch = result["branch"]
    assert result["proposed"] is True and result["rows"] == 60
    assert result["counts"]["already_in_data"] == 8  # 5 corpus rows, 3 test texts: dropped
    assert result["test_split_unchanged"] is True
    assert isinstance(result["beats_main"], bool)
    assert branch in {
        f"retrain/{d:%Y-%m-%d}" for d in (datetime.now(UTC), datetime.now(UTC) - timedelta(days=1))
    }

    # The bare remote has the branch; its commit changes the data, params and lock.
    heads = _sh(["git", "ls-remote", "--heads", str(bare)], root).stdout
    assert f"refs/heads/{branch}" in heads
    changed = _sh(["git", "diff", "--name-only", "main", f"origin/{branch}"], root, check=False)
    if changed.returncode != 0:  # the remote-tracking ref is made by a fetch
        _sh(["git", "fetch", "-q", "origin"], root)
        changed = _sh(["git", "diff", "--name-only", "main", f"origin/{branch}"], root)
    files = set(changed.stdout.split())
    assert {"data.dvc", "dvc.lock", "params.yaml", "reports/prepare/summary.json"} <= files
    assert not any(f.startswith(("reports/monitor", "reports/retrain")) for f in files)
    message = _sh(["git", "log", "-1", "--format=%B", f"origin/{branch}"], root).stdout
    assert "60 new labelled production rows" in message and "test split is unchanged" in message

    # The PR body names the rows, the window and the findings.
    body = (root / "reports" / "retrain" / "pr.md").read_text()
    assert "Retrain on 60 labelled production rows" in body
    assert "snapshot `20250131T041700Z`" in body and "Test split: unchanged" in body
    assert "## Production monitor: drift" in body and "| test macro-F1 |" in body
    assert body.startswith(f"## {LOSES}") == (result["beats_main"] is False)

    # Main is untouched: same commit, checked out, clean, its params and data as they were.
    assert _sh(["git", "rev-parse", "main"], root).stdout.strip() == main_sha
    assert _sh(["git", "symbolic-ref", "--short", "HEAD"], root).stdout.strip() == "main"
    status = _sh(["git", "status", "--porcelain", "--", ".", ":(exclude)reports/monitor",
                  ":(exclude)reports/retrain"], root).stdout  # fmt: skip
    assert status == ""
    assert "production" not in (root / "params.yaml").read_text().split("monitor:")[0]
    assert not (root / "data" / "production").exists()
    pd.testing.assert_frame_equal(
        pd.read_parquet(root / "artifacts" / "prepared" / "test.parquet"), main_test
    )

    # On the branch: reproduced (dvc status clean, outputs in the DVC remote), same test rows,
    # train = main's train plus exactly the 60 new rows.
    _sh(["git", "switch", "-q", branch], root)
    _sh(["dvc", "checkout", "-q"], root)
    assert _sh(["dvc", "status", "--quiet"], root, check=False).returncode == 0
    cloud = _sh(["dvc", "status", "--cloud", "--quiet"], root, check=False)
    assert cloud.returncode == 0, cloud.stdout
    pd.testing.assert_frame_equal(
        pd.read_parquet(root / "artifacts" / "prepared" / "test.parquet"), main_test
    )
    train = pd.read_parquet(root / "artifacts" / "prepared" / "train.parquet")
    assert len(train) == len(main_train) + 60
    assert set(train["text"]) - set(main_train["text"]) == set(new["text"])
    on_branch = yaml.safe_load((root / "params.yaml").read_text())
    assert on_branch["data"]["train_only_paths"] == [result["data_file"]]
    assert (root / result["data_file"]).read_text(encoding="utf-8").startswith("text,label\n")
    _sh(["git", "switch", "-q", "main"], root)
