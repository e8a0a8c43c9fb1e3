"""Drift: the verdict on same vs shifted data, the drift stage, and drift-check on what the model
predicts (tests/monitoring/test_drift_job.py has the job's window, torn lines and memory)."""

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
from typer.testing import CliRunner

from tests.conftest import REPO
from tests.exported import TinyExport
from textclf import io
from textclf.cli import app
from textclf.config.drift import DriftParams
from textclf.monitoring.drift import (
    build_profile,
    compare,
    load_reference_profile,
    save_reference_profile,
)
from textclf_dev.toy import toy_frame

# Shipped defaults. With over 1000 reference rows Evidently tests distances (Wasserstein,
# Jensen-Shannon), not p-values: same-distribution samples stay well below the thresholds, so
# "no drift" does not hinge on a 5% chance per column.
DEFAULTS = DriftParams(min_rows=50)


def profile(model: Any, frame: pd.DataFrame, with_labels: bool = True) -> pd.DataFrame:
    """The model's predictions on ``frame`` as a drift profile."""
    texts = frame["text"].tolist()
    return build_profile(
        texts,
        model.predict_proba(texts),
        model.labels,
        frame["label"].tolist() if with_labels else None,
    )


def long_texts(n: int, min_words: int = 11, seed: int = 5) -> pd.DataFrame:
    """``n`` toy texts with at least ``min_words`` words (toy texts have 5 to 15)."""
    frame = toy_frame(n * 6, seed=seed)
    return frame[frame["text"].str.split().str.len() >= min_words].head(n)


@pytest.fixture(scope="module")
def same_halves() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = toy_frame(3000, seed=11).sample(frac=1.0, random_state=0)
    return frame.iloc[:1500], frame.iloc[1500:]


def test_random_split_of_the_same_data_is_no_drift(onnx_model: Any, same_halves: Any) -> None:
    reference, current = (profile(onnx_model, half) for half in same_halves)
    summary, _ = compare(reference, current, DEFAULTS)
    assert summary["drift_detected"] is False, summary["drifted_columns"]
    assert summary["reasons"] == [] and summary["n_drifted"] == 0
    assert set(summary["columns"]) == {
        "chars",
        "words",
        "non_letter_share",
        "confidence",
        "has_url",
        "has_mention",
        "has_hashtag",
        "has_emoji",
        "prediction",
        "label",
    }
    chars = summary["columns"]["chars"]
    assert chars["method"].startswith("Wasserstein") and chars["threshold"] == 0.1
    assert chars["score"] < 0.1 and chars["drifted"] is False and chars["type"] == "numeric"
    assert summary["thresholds"]["drift_share"] == DEFAULTS.drift_share
    assert summary["rows"] == {"reference": 1500, "current": 1500}


def test_another_label_mix_is_drift(onnx_model: Any, same_halves: Any) -> None:
    reference = profile(onnx_model, same_halves[0])
    negatives = profile(onnx_model, toy_frame(300, seed=12, labels=["negative"]))
    summary, _ = compare(reference, negatives, DEFAULTS)
    assert summary["drift_detected"] is True
    assert {"prediction", "label"} <= set(summary["drifted_columns"])
    assert "critical column 'prediction' drifted" in summary["reasons"]
    assert summary["prediction_shares"]["current"].get("negative", 0) > 0.8
    # Without critical columns and with a share no comparison reaches, the same data passes.
    lenient = DEFAULTS.model_copy(update={"critical_columns": [], "drift_share": 1.0})
    assert compare(reference, negatives, lenient)[0]["drift_detected"] is False


def test_only_long_texts_is_drift_in_length(onnx_model: Any, same_halves: Any) -> None:
    reference = profile(onnx_model, same_halves[0])
    summary, _ = compare(reference, profile(onnx_model, long_texts(200)), DEFAULTS)
    assert {"chars", "words"} <= set(summary["drifted_columns"])
    assert summary["drift_detected"] is True
    assert summary["reasons"][0].startswith(f"{summary['n_drifted']} of 10 columns drifted")


def test_unknown_critical_column_is_a_config_error(onnx_model: Any, same_halves: Any) -> None:
    from textclf.errors import ConfigError

    reference = profile(onnx_model, same_halves[0])
    with pytest.raises(ConfigError, match="drift.critical_columns"):
        compare(reference, reference, DriftParams(critical_columns=["sentiment"]))


def test_drift_stage_writes_verdict_html_and_reference_profile(
    exported: TinyExport, stage_outputs: dict[str, Any], onnx_model: Any
) -> None:
    paths = exported.paths
    summary = io.read_json(paths.drift_summary)
    assert summary == json.loads(json.dumps(stage_outputs["drift"]))
    assert isinstance(summary["drift_detected"], bool)
    assert summary["model"] == {"variant": "fp32", "version": onnx_model.version}
    assert "label" in summary["columns"]  # both splits have true labels
    assert all(
        {"score", "threshold", "drifted", "method"} <= set(c) for c in summary["columns"].values()
    )
    assert paths.drift_html.stat().st_size > 10_000
    frame, meta = load_reference_profile(paths.drift_reference_profile)
    assert len(frame) == len(pd.read_parquet(paths.split("reference")))
    assert {"row", "text", "label", "prediction", "confidence", "prob_positive"} <= set(frame)
    assert meta["model_version"] == onnx_model.version
    assert meta["labels"] == onnx_model.labels
    assert DriftParams.model_validate(meta["params"]) == exported.params.drift


# --- drift-check ---------------------------------------------------------------------------


def write_traffic(path: Path, model: Any, frame: pd.DataFrame) -> Path:
    """Record ``frame`` as the service would: one JSON object per line, in the last hour."""
    probs = model.predict_proba(frame["text"].tolist())
    start = datetime.now(UTC) - timedelta(hours=1)
    with path.open("w", encoding="utf-8") as fh:
        for i, (text, p) in enumerate(zip(frame["text"], probs, strict=True)):
            fh.write(
                json.dumps(
                    {
                        "ts": (start + timedelta(milliseconds=i)).isoformat(),
                        "text": text,
                        "label": model.labels[int(p.argmax())],
                        "probabilities": dict(zip(model.labels, p.round(6).tolist(), strict=True)),
                        "model_version": model.version,
                    }
                )
                + "\n"
            )
    return path


@pytest.fixture(scope="module")
def reference_file(
    tmp_path_factory: pytest.TempPathFactory, onnx_model: Any, same_halves: Any
) -> Path:
    path = tmp_path_factory.mktemp("reference") / "reference_profile.parquet"
    return save_reference_profile(
        profile(onnx_model, same_halves[0]),
        path,
        {
            "model_version": onnx_model.version,
            "labels": onnx_model.labels,
            "params": DEFAULTS.model_dump(),
        },
    )


def check(traffic: Path, reference: Path, *extra: str) -> Any:
    result = CliRunner().invoke(
        app, ["drift-check", "--traffic-dir", str(traffic), "--reference", str(reference), *extra]
    )
    return result


def test_drift_check_exit_0_on_traffic_like_the_reference(
    tmp_path: Path, onnx_model: Any, same_halves: Any, reference_file: Path
) -> None:
    current = same_halves[1]
    write_traffic(tmp_path / "pod-a.jsonl", onnx_model, current.iloc[:750])
    write_traffic(tmp_path / "pod-a.jsonl.1", onnx_model, current.iloc[750:])  # rotated
    (tmp_path / "notes.txt").write_text("not traffic")
    out = tmp_path / "out"
    result = check(tmp_path, reference_file, "--out", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["drift_detected"] is False and summary["verdict"] == "ok"
    assert summary["rows"]["current"] == 1500
    assert summary["traffic"]["files"] == ["pod-a.jsonl.1", "pod-a.jsonl"]
    assert summary["model_version_mismatch"] is False
    assert "label" not in summary["columns"]  # traffic has no true labels
    assert json.loads((out / "summary.json").read_text()) == summary
    assert (out / "report.html").stat().st_size > 10_000


def test_drift_check_exit_1_on_shifted_traffic(
    tmp_path: Path, onnx_model: Any, reference_file: Path
) -> None:
    write_traffic(tmp_path / "pod-a.jsonl", onnx_model, toy_frame(200, labels=["positive"]))
    result = check(tmp_path, reference_file)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["drift_detected"] is True and "prediction" in summary["drifted_columns"]
    assert summary["verdict"] == "drift"


def test_drift_check_skips_and_counts_a_torn_line(
    tmp_path: Path, onnx_model: Any, same_halves: Any, reference_file: Path
) -> None:
    write_traffic(tmp_path / "pod-a.jsonl", onnx_model, same_halves[1].iloc[:100])
    log = write_traffic(tmp_path / "pod-b.jsonl", onnx_model, same_halves[1].iloc[100:])
    lines = log.read_text().splitlines()
    lines[2] = lines[2][:40]  # a line cut off mid-write
    log.write_text("\n".join(lines) + "\n")
    result = check(tmp_path, reference_file)
    assert result.exit_code == 0, result.output  # 1 of 1500 lines: under max_invalid_share
    skipped = json.loads(result.stdout)["traffic"]["skipped"]
    assert skipped["total"] == 1 and skipped["by_reason"] == {"not_json": 1}
    assert skipped["examples"][0].startswith("pod-b.jsonl:3: not_json: not valid JSON")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"text": "", "label": "negative", "probabilities": {"negative": 1.0}}, "bad_text"),
        ({"text": "ok", "probabilities": {"negative": 1.0}}, "bad_label"),
        ({"text": "ok", "label": "negative"}, "bad_probabilities"),
        (
            {"text": "ok", "label": "negative", "probabilities": {"negative": 2}},
            "bad_probabilities",
        ),
        ({"text": "ok", "label": "angry", "probabilities": {"angry": 1.0}}, "unknown_labels"),
        ({"label": "neutral", "probabilities": {"neutral": 1.0}}, "bad_text"),  # v1 needs text
    ],
)
def test_drift_check_names_the_bad_field_and_line(
    tmp_path: Path, reference_file: Path, record: Any, reason: str
) -> None:
    ts = datetime.now(UTC).isoformat()
    good = {
        "ts": ts,
        "text": "ok",
        "label": "neutral",
        "probabilities": {"negative": 0.1, "neutral": 0.8, "positive": 0.1},
    }
    log = tmp_path / "pod.jsonl"
    log.write_text(json.dumps(good) + "\n\n" + json.dumps({"ts": ts, **record}) + "\n")
    result = check(tmp_path, reference_file)
    assert result.exit_code == 3, result.output  # 1 of 2 lines invalid: degraded
    summary = json.loads(result.stdout)
    assert summary["verdict"] == "degraded"
    assert summary["traffic"]["skipped"]["examples"][0].startswith(f"pod.jsonl:3: {reason}: ")


def test_drift_check_exit_2_on_missing_input_and_0_on_quiet_traffic(
    tmp_path: Path, onnx_model: Any, reference_file: Path
) -> None:
    missing = check(tmp_path / "nope", reference_file)
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    no_logs = check(tmp_path, reference_file)
    assert no_logs.exit_code == 2 and "no *.jsonl traffic logs" in no_logs.stderr
    (tmp_path / "pod.jsonl").write_text("")
    (tmp_path / "pod.jsonl.1").write_text("\n")
    empty = check(tmp_path, reference_file)
    assert empty.exit_code == 0 and json.loads(empty.stdout)["verdict"] == "insufficient-data"
    write_traffic(tmp_path / "pod.jsonl", onnx_model, toy_frame(20))
    small = check(tmp_path, reference_file)
    assert small.exit_code == 0
    (reason,) = json.loads(small.stdout)["reasons"]
    assert reason.startswith("20 valid row(s) since") and "drift.min_rows = 50" in reason
    no_reference = check(tmp_path, tmp_path / "missing.parquet")
    assert no_reference.exit_code == 2 and "dvc repro drift" in no_reference.stderr


def test_drift_check_thresholds_come_from_params_when_given(
    tmp_path: Path, onnx_model: Any, reference_file: Path
) -> None:
    write_traffic(tmp_path / "pod.jsonl", onnx_model, toy_frame(60, seed=3))
    params = tmp_path.parent / f"{tmp_path.name}-params.yaml"
    params.write_text((REPO / "params.yaml").read_text().replace("min_rows: 100", "min_rows: 80"))
    result = check(tmp_path, reference_file, "--params", str(params))
    assert result.exit_code == 0 and "drift.min_rows = 80" in result.stdout
    assert json.loads(result.stdout)["verdict"] == "insufficient-data"


def test_drift_check_runs_without_torch(
    tmp_path: Path, onnx_model: Any, same_halves: Any, reference_file: Path
) -> None:
    """The CronJob runs drift-check in the serving image: importing torch would fail there."""
    write_traffic(tmp_path / "pod.jsonl", onnx_model, same_halves[1])
    code = (
        "import sys\n"
        "BLOCKED = {'torch', 'transformers', 'lightning'}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is not in the serving image')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from textclf.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    assert not BLOCKED & set(sys.modules), BLOCKED & set(sys.modules)\n"
    )
    env = {**os.environ, "TEXTCLF_DRIFT_REFERENCE": str(reference_file)}
    result = subprocess.run(
        [sys.executable, "-c", code, "drift-check", "--traffic-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["reference"]["path"] == str(reference_file)
