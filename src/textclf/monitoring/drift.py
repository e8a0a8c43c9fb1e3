"""Drift between a reference profile and current data or recorded traffic, with Evidently.

Torch-free: the ``drift`` stage and ``textclf drift-check`` (run by a CronJob in the serving
image) share this module. A profile is a frame with ``text``, ``prediction`` and ``confidence``
(and ``label`` when true labels exist); the compared columns are offline text descriptors
(:func:`textclf.monitoring.slices.text_features`), the predicted class, the confidence (max
probability), the true label when both sides have one, and optionally the raw text.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textclf import io
from textclf.config import DriftParams
from textclf.errors import ConfigError, DataError
from textclf.monitoring.slices import FLAG_FAMILIES, text_features

NUMERIC = ["chars", "words", "non_letter_share", "confidence"]
CATEGORICAL = [*FLAG_FAMILIES, "prediction"]
REFERENCE_ENV = "TEXTCLF_DRIFT_REFERENCE"
PROFILE_META_KEY = b"textclf.drift"
_ROTATED = re.compile(r"\.jsonl(?:\.\d+)?$")


def build_profile(
    texts: Sequence[str],
    probs: np.ndarray,
    labels: Sequence[str],
    true_labels: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Texts with predicted class, confidence and per-class probabilities (``prob_<label>``)."""
    probs = np.asarray(probs, dtype=np.float64)
    frame = pd.DataFrame(
        {
            "text": list(texts),
            "prediction": [labels[i] for i in probs.argmax(axis=1)],
            "confidence": probs.max(axis=1),
        }
    )
    if true_labels is not None:
        frame["label"] = list(true_labels)
    for i, lab in enumerate(labels):
        frame[f"prob_{lab}"] = probs[:, i]
    return frame


def _columns(
    reference: pd.DataFrame, current: pd.DataFrame, cfg: DriftParams
) -> tuple[list[str], list[str], list[str]]:
    categorical = list(CATEGORICAL)
    if "label" in reference.columns and "label" in current.columns:
        categorical.append("label")
    text = ["text"] if cfg.text_content else []
    known = set(NUMERIC) | set(categorical) | set(text)
    unknown = [c for c in cfg.critical_columns if c not in known]
    if unknown:
        raise ConfigError(
            f"drift.critical_columns has {unknown}, which this comparison does not "
            f"have. Fix: use columns from {sorted(known)}."
        )
    return list(NUMERIC), categorical, text


def _with_features(profile: pd.DataFrame) -> pd.DataFrame:
    features = text_features(profile["text"].tolist())
    keep = [c for c in ("text", "prediction", "confidence", "label") if c in profile.columns]
    out = pd.concat([profile[keep].reset_index(drop=True), features], axis=1)
    for column in FLAG_FAMILIES:  # categorical for Evidently: strings, not booleans
        out[column] = out[column].map({True: "yes", False: "no"})
    return out


def _score_kind(method: str) -> str:
    return "p_value" if "p_value" in method else "score"


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def column_drifted(entry: Mapping[str, Any], threshold: float | None) -> bool:
    """Whether one column drifted: its recorded verdict, or its score judged by another threshold.

    A p-value drifts at or below the threshold, a distance at or above it (Evidently's rule).
    """
    score = entry.get("score")
    if threshold is None or score is None or threshold == entry.get("threshold"):
        return bool(entry["drifted"])
    if entry.get("score_kind") == "p_value":
        return float(score) <= threshold
    return float(score) >= threshold


def verdict(
    columns: Mapping[str, Mapping[str, Any]], cfg: DriftParams
) -> tuple[list[str], float, list[str]]:
    """The drifted columns, their share and the reasons for a drift verdict under ``cfg``.

    A column's verdict is Evidently's unless ``cfg`` sets another explicit threshold for its
    type (``num_threshold`` for numeric, ``cat_threshold`` for categorical columns), so the gate
    can judge a committed summary with the base branch's thresholds.
    """
    explicit = {"numeric": cfg.num_threshold, "categorical": cfg.cat_threshold}
    drifted = [
        name
        for name, entry in columns.items()
        if column_drifted(entry, explicit.get(str(entry.get("type"))))
    ]
    share = len(drifted) / max(len(columns), 1)
    reasons = []
    if share >= cfg.drift_share:
        reasons.append(
            f"{len(drifted)} of {len(columns)} columns drifted "
            f"(share {share:.2f} >= drift_share {cfg.drift_share:g})"
        )
    reasons += [f"critical column '{c}' drifted" for c in cfg.critical_columns if c in drifted]
    return drifted, share, reasons


def compare(
    reference: pd.DataFrame, current: pd.DataFrame, cfg: DriftParams
) -> tuple[dict[str, Any], Any]:
    """Run Evidently's drift tests; return the verdict summary and the Evidently snapshot."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric, categorical, text = _columns(reference, current, cfg)
    ref, cur = _with_features(reference), _with_features(current)
    columns = numeric + categorical + text
    definition = DataDefinition(
        numerical_columns=numeric, categorical_columns=categorical, text_columns=text
    )
    preset = DataDriftPreset(
        columns=columns,
        drift_share=cfg.drift_share,
        num_method=cfg.num_method,
        cat_method=cfg.cat_method,
        num_threshold=cfg.num_threshold,
        cat_threshold=cfg.cat_threshold,
    )
    snapshot = Report([preset], include_tests=True).run(
        Dataset.from_pandas(cur[columns], data_definition=definition),
        Dataset.from_pandas(ref[columns], data_definition=definition),
    )
    raw = snapshot.dict()
    scores: dict[str, dict[str, Any]] = {}
    for metric in raw["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = {
                "method": config["method"],
                "threshold": config["threshold"],
                "score": _finite(metric["value"]),
                "score_kind": _score_kind(config["method"]),
            }
    for test in raw["tests"]:
        column = test["metric_config"]["params"].get("column")
        if column in scores and test["id"] == "drift":
            scores[column]["drifted"] = test["status"] == "FAIL"
    missing = [c for c in columns if "drifted" not in scores.get(c, {})]
    if missing:
        raise RuntimeError(f"Evidently returned no drift test for column(s) {missing}")
    for column, entry in scores.items():
        entry["type"] = (
            "numeric" if column in numeric else "text" if column in text else "categorical"
        )
    drifted, share, reasons = verdict({c: scores[c] for c in columns}, cfg)
    summary = {
        "drift_detected": bool(reasons),
        "reasons": reasons,
        "share_drifted": share,
        "n_drifted": len(drifted),
        "n_columns": len(columns),
        "drifted_columns": drifted,
        "columns": {c: scores[c] for c in columns},
        "thresholds": {
            "drift_share": cfg.drift_share,
            "critical_columns": list(cfg.critical_columns),
            "num_method": cfg.num_method,
            "cat_method": cfg.cat_method,
            "num_threshold": cfg.num_threshold,
            "cat_threshold": cfg.cat_threshold,
        },
        "rows": {"reference": len(reference), "current": len(current)},
        "prediction_shares": {
            "reference": _shares(reference["prediction"]),
            "current": _shares(current["prediction"]),
        },
        "confidence_mean": {
            "reference": float(reference["confidence"].mean()),
            "current": float(current["confidence"].mean()),
        },
    }
    return summary, snapshot


def _shares(values: pd.Series) -> dict[str, float]:
    counts = values.value_counts(normalize=True).sort_index()
    return {str(k): float(v) for k, v in counts.items()}


def write_outputs(
    summary: dict[str, Any], snapshot: Any, summary_path: Path, html_path: Path
) -> None:
    """Write the JSON verdict and Evidently's HTML report, each atomically."""
    with io.atomic_path(html_path) as tmp:
        snapshot.save_html(str(tmp))
    io.write_json(summary_path, summary)


# --- the reference profile shipped with the model -------------------------------------------


def save_reference_profile(profile: pd.DataFrame, path: Path, meta: dict[str, Any]) -> Path:
    """Write the reference profile as Parquet; ``meta`` (model version, params) rides along."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(profile, preserve_index=False)
    merged = {**(table.schema.metadata or {}), PROFILE_META_KEY: json.dumps(meta).encode()}
    with io.atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(merged), tmp)
    return Path(path)


def load_reference_profile(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a reference profile and its metadata; fail with a fix when it is missing or wrong."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"reference profile {path} not found. Fix: run `dvc repro drift` (it "
            f"writes artifacts/drift/reference_profile.parquet), then pass it with "
            f"--reference or set {REFERENCE_ENV}."
        )
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as err:
        raise DataError(f"reference profile {path} is not a readable Parquet file: {err}") from None
    frame = table.to_pandas()
    missing = [c for c in ("text", "prediction", "confidence") if c not in frame.columns]
    if missing:
        raise DataError(
            f"reference profile {path} lacks column(s) {missing}. Fix: regenerate "
            "it with `dvc repro drift`."
        )
    raw_meta = (table.schema.metadata or {}).get(PROFILE_META_KEY)
    return frame, (json.loads(raw_meta) if raw_meta else {})


def default_reference(root: Path = Path()) -> Path:
    """``$TEXTCLF_DRIFT_REFERENCE`` if set, else ``artifacts/drift/reference_profile.parquet``."""
    from textclf.paths import Paths

    env = os.environ.get(REFERENCE_ENV)
    return Path(env) if env else Paths(root).drift_reference_profile


# --- recorded traffic -------------------------------------------------------------------------


def traffic_files(directory: Path) -> list[Path]:
    """``*.jsonl`` and rotated ``*.jsonl.N`` files in ``directory``, oldest rotation first."""

    def order(path: Path) -> tuple[str, int]:
        stem, _, number = path.name.rpartition(".jsonl")
        return stem, -int(number.lstrip(".") or 0)

    found = [p for p in Path(directory).iterdir() if p.is_file() and _ROTATED.search(p.name)]
    return sorted(found, key=order)


def _bad(path: Path, line_no: int, what: str) -> DataError:
    return DataError(
        f"{path}:{line_no}: {what}. Fix: repair or remove that line (each line must "
        'be a JSON object like {"ts": ..., "text": "...", "label": "...", '
        '"probabilities": {"<label>": 0.9, ...}, "model_version": "..."}).'
    )


def _parse_record(line: str, path: Path, line_no: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise _bad(path, line_no, f"not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise _bad(path, line_no, f"expected a JSON object, got {type(record).__name__}")
    text, label, probs = record.get("text"), record.get("label"), record.get("probabilities")
    if not isinstance(text, str) or not text.strip():
        raise _bad(path, line_no, "'text' is missing, empty or not a string")
    if not isinstance(label, str):
        raise _bad(path, line_no, "'label' (the predicted label) is missing or not a string")
    if not isinstance(probs, dict) or not probs:
        raise _bad(path, line_no, "'probabilities' is missing or not a {label: probability} object")
    values = list(probs.values())
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in values
    ):
        raise _bad(path, line_no, "'probabilities' values must be numbers in [0, 1]")
    if label not in probs:
        raise _bad(path, line_no, f"'label' {label!r} is not a key of 'probabilities'")
    version = record.get("model_version")
    if version is not None and not isinstance(version, str):
        raise _bad(path, line_no, "'model_version' must be a string")
    return {
        "text": text,
        "prediction": label,
        "confidence": float(max(values)),
        "model_version": version or "unknown",
        "labels": tuple(probs),
    }


def read_traffic(directory: Path, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Recorded predictions from the JSON-lines logs in ``directory``, validated line by line."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            f"traffic directory {directory} does not exist. Fix: pass the directory "
            "the service records to (--traffic-dir)."
        )
    files = traffic_files(directory)
    if not files:
        raise DataError(
            f"{directory} has no *.jsonl traffic logs. Fix: check --traffic-dir and "
            "that the service records traffic."
        )
    rows = []
    known = set(labels) if labels is not None else None
    for path in files:
        with path.open(encoding="utf-8", errors="strict") as fh:
            try:
                for line_no, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    record = _parse_record(line, path, line_no)
                    if known is not None and not set(record["labels"]) <= known:
                        raise _bad(
                            path,
                            line_no,
                            f"labels {sorted(record['labels'])} differ "
                            f"from the reference model's {sorted(known)}",
                        )
                    rows.append(record)
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path}: not UTF-8 text ({err.reason} at byte {err.start}). "
                    "Fix: remove or re-encode the file."
                ) from None
    if not rows:
        raise DataError(
            f"the traffic logs in {directory} ({len(files)} file(s)) are empty. Fix: "
            "wait until the service has recorded traffic."
        )
    return pd.DataFrame(rows).drop(columns=["labels"])


def drift_check(
    traffic_dir: Path,
    reference_path: Path,
    cfg: DriftParams | None = None,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Compare recorded traffic with the reference profile; optionally write JSON + HTML."""
    reference, meta = load_reference_profile(reference_path)
    if cfg is None:
        cfg = DriftParams.model_validate(meta.get("params", {}))
    labels = meta.get("labels") or sorted(reference["prediction"].unique())
    traffic = read_traffic(traffic_dir, labels)
    if len(traffic) < cfg.min_rows:
        raise DataError(
            f"{traffic_dir} holds {len(traffic)} traffic record(s), fewer than "
            f"drift.min_rows = {cfg.min_rows}: too few to test for drift. Fix: wait "
            "for more traffic, or lower drift.min_rows."
        )
    summary, snapshot = compare(reference.drop(columns=["label"], errors="ignore"), traffic, cfg)
    versions = Counter(traffic["model_version"])
    summary["traffic"] = {
        "directory": str(traffic_dir),
        "files": [p.name for p in traffic_files(traffic_dir)],
        "model_versions": dict(versions),
    }
    summary["reference"] = {"path": str(reference_path), "model_version": meta.get("model_version")}
    expected = meta.get("model_version")
    summary["model_version_mismatch"] = bool(expected) and set(versions) != {expected}
    if out_dir is not None:
        write_outputs(
            summary, snapshot, Path(out_dir) / "summary.json", Path(out_dir) / "report.html"
        )
    return summary
