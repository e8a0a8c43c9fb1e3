"""Drift between a reference profile and current data or recorded traffic, with Evidently.

Torch-free: the ``drift`` stage and ``textclf drift-check`` (run by a CronJob in the serving
image) share this module. A profile is a frame with ``text``, ``prediction`` and ``confidence``
(and ``label`` when true labels exist); the compared columns are offline text descriptors
(:func:`textclf.monitoring.slices.text_features`), the predicted class, the confidence (max
probability), the true label when both sides have one, and optionally the raw text.

Recorded traffic is read in one streaming pass (:func:`scan_traffic`): only the window's lines
count, a seeded reservoir keeps at most ``drift.max_rows`` of them for Evidently, and torn or
invalid lines are counted and skipped, so memory stays bounded and one bad line is not fatal.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, NamedTuple, Protocol, cast

import numpy as np
import pandas as pd

from textclf import io
from textclf.config.base import validate
from textclf.config.drift import DriftParams
from textclf.errors import ConfigError, DataError
from textclf.monitoring.slices import FLAG_FAMILIES, text_features
from textclf.records import is_feedback_file

#: The text descriptors compared (the columns of :func:`text_features`).
FEATURES = ["chars", "words", "non_letter_share", *FLAG_FAMILIES]
NUMERIC = ["chars", "words", "non_letter_share", "confidence"]
CATEGORICAL = [*FLAG_FAMILIES, "prediction"]
REFERENCE_ENV = "TEXTCLF_DRIFT_REFERENCE"
PROFILE_META_KEY = b"textclf.drift"
_ROTATED = re.compile(r"\.jsonl(?:\.\d+)?$")


class Verdict(StrEnum):
    """The outcome of one check of recorded traffic (exit codes: ``textclf drift-check --help``).

    ``degraded``: too many invalid lines to trust the traffic; ``insufficient-data``: fewer
    than ``drift.min_rows`` valid rows in the window.
    """

    OK = "ok"
    DRIFT = "drift"
    DEGRADED = "degraded"
    INSUFFICIENT_DATA = "insufficient-data"


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
    # Traffic from a service that drops or hashes texts has rows without one: no text column.
    has_text = "text" in current.columns and bool(current["text"].notna().all())
    text = ["text"] if cfg.text_content and has_text else []
    known = set(NUMERIC) | set(categorical) | ({"text"} if cfg.text_content else set())
    unknown = [c for c in cfg.critical_columns if c not in known]
    if unknown:
        raise ConfigError(
            f"drift.critical_columns has {unknown}, which this comparison does not "
            f"have. Fix: use columns from {sorted(known)}."
        )
    return list(NUMERIC), categorical, text


def _with_features(profile: pd.DataFrame) -> pd.DataFrame:
    """The compared columns; descriptors a profile already has (traffic without texts) stay."""
    if set(FEATURES) <= set(profile.columns):
        features = profile[FEATURES].reset_index(drop=True)
    else:
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

#: Record versions read: 1 ``{"ts", "text", "label", "probabilities", "model_version"}``; 2 adds
#: ``"v": 2`` and ``"features"`` (:data:`FEATURES`), and carries ``"text"`` only when the service
#: keeps texts.
RECORD_VERSIONS = (1, 2)
#: A longer line is skipped without being held in memory (a record is a few KiB at most).
MAX_LINE_BYTES = 1 << 20
#: How many ``file:line: reason`` examples of skipped lines the summary lists.
MAX_EXAMPLES = 5
#: Sampled texts held at most before their descriptors are computed (and the texts dropped).
FEATURE_BATCH = 4096
_FEATURE_DTYPES = [np.int64, np.int64, np.float64] + [np.bool_] * len(FLAG_FAMILIES)


def traffic_files(directory: Path) -> list[Path]:
    """``*.jsonl`` and rotated ``*.jsonl.N`` traffic files in ``directory``, oldest rotation
    first; feedback files (``*.feedback.jsonl``) are not traffic."""

    def order(path: Path) -> tuple[str, int]:
        stem, _, number = path.name.rpartition(".jsonl")
        return stem, -int(number.lstrip(".") or 0)

    found = [
        p
        for p in Path(directory).iterdir()
        if p.is_file() and _ROTATED.search(p.name) and not is_feedback_file(p.name)
    ]
    return sorted(found, key=order)


class _LineError(Exception):
    """A traffic line that cannot be used: a reason key (counted) and what is wrong with it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class _Row(NamedTuple):
    text: str | None
    features: tuple[Any, ...] | None  # a v2 record's descriptors, when it has no text
    prediction: str
    confidence: float
    model_version: str


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _brief(value: Any) -> str:
    """``repr`` cut to 30 characters: enough to recognise a value, never a whole text."""
    text = repr(value)
    return text if len(text) <= 30 else f"{text[:27]}..."


def _header(raw: bytes) -> tuple[dict[str, Any], int, datetime]:
    """The record, its version and its timestamp; the rest is checked only inside the window."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _LineError("not_utf8", f"not UTF-8 ({err.reason} at byte {err.start})") from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise _LineError("not_json", f"not valid JSON ({err.msg}, column {err.colno})") from None
    except (ValueError, RecursionError):  # an over-long integer, nesting too deep
        raise _LineError("not_json", "not valid JSON") from None
    if not isinstance(record, dict):
        raise _LineError("not_object", f"expected a JSON object, got {type(record).__name__}")
    version = record.get("v", 1)
    if isinstance(version, bool) or version not in RECORD_VERSIONS:
        raise _LineError("bad_version", f"record version 'v' = {_brief(version)} is not 1 or 2")
    stamp = record.get("ts")
    try:
        ts = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        ts = None
    if ts is None:
        raise _LineError("bad_ts", "'ts' is missing or not an ISO 8601 timestamp")
    return record, int(version), ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _features(value: Any) -> tuple[Any, ...]:
    if not isinstance(value, dict):
        raise _LineError("bad_features", "no 'text', and 'features' is missing or not an object")
    out = []
    for name in FEATURES:
        item = value.get(name)
        if name in ("chars", "words"):
            ok = isinstance(item, int) and not isinstance(item, bool) and item >= 0
        elif name == "non_letter_share":
            ok = isinstance(item, int | float) and not isinstance(item, bool) and 0 <= item <= 1
        else:
            ok = isinstance(item, bool)
        if not ok:
            raise _LineError("bad_features", f"'features.{name}' is missing or invalid")
        out.append(item)
    return tuple(out)


def _row(record: dict[str, Any], version: int, labels: frozenset[str] | None) -> _Row:
    label, probs = record.get("label"), record.get("probabilities")
    if not isinstance(label, str):
        raise _LineError("bad_label", "'label' (the predicted label) is missing or not a string")
    if not isinstance(probs, dict) or not probs:
        raise _LineError(
            "bad_probabilities", "'probabilities' is missing or not a {label: probability} object"
        )
    values = list(probs.values())
    if not all(_is_number(v) and 0.0 <= v <= 1.0 for v in values):
        raise _LineError("bad_probabilities", "'probabilities' values must be numbers in [0, 1]")
    if label not in probs:
        raise _LineError("bad_label", "'label' is not a key of 'probabilities'")
    if labels is not None and not probs.keys() <= labels:
        raise _LineError(
            "unknown_labels",
            f"labels {_brief(sorted(probs.keys() - labels))} are not the reference "
            f"model's {sorted(labels)}",
        )
    model_version = record.get("model_version")
    if model_version is not None and not isinstance(model_version, str):
        raise _LineError("bad_model_version", "'model_version' must be a string")
    text = record.get("text")
    features = None
    if text is not None or version == 1:  # the text wins over any recorded features
        if not isinstance(text, str) or not text.strip():
            raise _LineError("bad_text", "'text' is missing, empty or not a string")
    else:
        features = _features(record.get("features"))
    return _Row(
        text,
        features,
        sys.intern(label),
        float(max(values)),
        sys.intern(model_version or "unknown"),
    )


def _lines(fh: IO[bytes]) -> Iterator[bytes | None]:
    """The file's lines as bytes; ``None`` for a line over :data:`MAX_LINE_BYTES` (not kept)."""
    while line := fh.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := fh.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield line


class LineTally(Protocol):
    """Where :func:`window_lines` counts the lines it reads and the ones it skips."""

    lines: int
    before_window: int
    skipped: Counter[str]
    examples: list[str]


def window_lines(
    fh: IO[bytes],
    name: str,
    since: datetime | None,
    labels: frozenset[str] | None,
    tally: LineTally,
) -> Iterator[tuple[dict[str, Any], int, datetime, _Row]]:
    """The valid records of one open traffic file at or after ``since``: each with its version,
    timestamp and checked row. Lines before the window, and invalid ones (with the first
    :data:`MAX_EXAMPLES` ``file:line: reason`` examples), are counted in ``tally``."""
    for line_no, raw in enumerate(_lines(fh), start=1):
        if raw is not None and raw.isspace():
            continue
        tally.lines += 1
        try:
            if raw is None:
                raise _LineError("too_long", f"longer than {MAX_LINE_BYTES} bytes")
            record, version, ts = _header(raw)
            if since is not None and ts < since:
                tally.before_window += 1
                continue
            row = _row(record, version, labels)
        except _LineError as bad:
            tally.skipped[bad.reason] += 1
            if len(tally.examples) < MAX_EXAMPLES:
                tally.examples.append(f"{name}:{line_no}: {bad.reason}: {bad}")
            continue
        yield record, version, ts, row


@dataclass
class TrafficScan:
    """One pass over the traffic logs: exact counts, and a uniform sample of the window's rows.

    ``sample`` holds at most ``max_rows`` rows (reservoir sampling seeded with ``seed``: the
    same files give the same sample). Their descriptors are computed in batches as rows enter
    it; with ``keep_text`` false their texts are then dropped, so memory does not grow with text
    length either. ``invalid_share`` is the skipped lines over the lines that may be in the
    window (valid rows + skipped); lines before ``since`` are not judged.
    """

    directory: Path
    since: datetime | None = None
    max_rows: int | None = None
    seed: int = 0
    keep_text: bool = True
    files: list[str] = field(default_factory=list)
    files_before_window: list[str] = field(default_factory=list)
    files_gone: list[str] = field(default_factory=list)
    lines: int = 0
    before_window: int = 0
    rows: int = 0
    rows_without_text: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    record_versions: Counter[int] = field(default_factory=Counter)
    model_versions: Counter[str] = field(default_factory=Counter)
    predictions: Counter[str] = field(default_factory=Counter)
    confidence_sum: float = 0.0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    sample: list[_Row] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._pending: set[int] = set()  # sample slots whose row has a text, no descriptors yet

    @property
    def n_skipped(self) -> int:
        """Lines skipped as invalid, all reasons."""
        return sum(self.skipped.values())

    @property
    def invalid_share(self) -> float:
        """Skipped lines over valid rows + skipped lines (0 when there are none)."""
        judged = self.rows + self.n_skipped
        return self.n_skipped / judged if judged else 0.0

    def read(self, fh: IO[bytes], name: str, labels: frozenset[str] | None) -> None:
        """Count and sample every line of one open traffic file."""
        for _record, version, ts, row in window_lines(fh, name, self.since, labels, self):
            self._add(row, version, ts)

    def _add(self, row: _Row, version: int, ts: datetime) -> None:
        self.rows += 1
        self.record_versions[version] += 1
        self.model_versions[row.model_version] += 1
        self.predictions[row.prediction] += 1
        self.confidence_sum += row.confidence
        self.rows_without_text += row.text is None
        self.first_ts = ts if self.first_ts is None else min(self.first_ts, ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        if self.max_rows is None or len(self.sample) < self.max_rows:
            slot = len(self.sample)
            self.sample.append(row)
        else:
            slot = self._rng.randrange(self.rows)
            if slot >= self.max_rows:
                return
            self.sample[slot] = row
        if row.features is None:
            self._pending.add(slot)
            if len(self._pending) >= FEATURE_BATCH:
                self._describe()
        else:
            self._pending.discard(slot)

    def _describe(self) -> None:
        """Descriptors for the pending sampled rows, from their texts (one batch)."""
        slots = sorted(self._pending)
        self._pending.clear()
        computed = text_features([self.sample[s].text or "" for s in slots])
        values = zip(*(computed[name].tolist() for name in FEATURES), strict=True)
        for slot, features in zip(slots, values, strict=True):
            row = self.sample[slot]
            text = row.text if self.keep_text else None
            self.sample[slot] = row._replace(text=text, features=features)

    def frame(self) -> pd.DataFrame:
        """The sampled rows: ``text`` (None where a record had none, or texts are not kept), the
        descriptors (from the text where there was one, else the record's), prediction,
        confidence and model version."""
        self._describe()
        rows = self.sample
        table = cast(list[tuple[Any, ...]], [r.features for r in rows])  # all set by now
        columns: dict[str, Any] = {"text": [r.text for r in rows]}
        for k, (name, dtype) in enumerate(zip(FEATURES, _FEATURE_DTYPES, strict=True)):
            columns[name] = np.array([f[k] for f in table], dtype=dtype)
        columns["prediction"] = [r.prediction for r in rows]
        columns["confidence"] = np.fromiter((r.confidence for r in rows), float, len(rows))
        columns["model_version"] = [r.model_version for r in rows]
        return pd.DataFrame(columns)

    def summary(self) -> dict[str, Any]:
        """The counts as JSON: files, lines, rows, skipped lines by reason with examples."""
        return {
            "directory": str(self.directory),
            "since": _iso(self.since),
            "first_ts": _iso(self.first_ts),
            "last_ts": _iso(self.last_ts),
            "files": self.files,
            "files_before_window": self.files_before_window,
            "files_gone": self.files_gone,
            "lines": self.lines,
            "before_window": self.before_window,
            "rows": self.rows,
            "sampled": len(self.sample),
            "max_rows": self.max_rows,
            "rows_without_text": self.rows_without_text,
            "record_versions": {str(v): n for v, n in sorted(self.record_versions.items())},
            "skipped": {
                "total": self.n_skipped,
                "share": self.invalid_share,
                "by_reason": dict(sorted(self.skipped.items())),
                "examples": self.examples,
            },
            "model_versions": dict(self.model_versions),
            "predictions": dict(sorted(self.predictions.items())),
        }


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat(timespec="seconds")


def scan_traffic(
    directory: Path,
    labels: Sequence[str] | None = None,
    *,
    since: datetime | None = None,
    max_rows: int | None = None,
    seed: int = 0,
    keep_text: bool = True,
) -> TrafficScan:
    """Stream the JSON-lines logs in ``directory``: lines at or after ``since`` count.

    A file last modified before ``since`` is not opened. A line that is torn, not UTF-8, not a
    JSON object, has a bad field or labels other than ``labels`` is skipped and counted. At most
    ``max_rows`` rows are kept (see :class:`TrafficScan`), their texts only with ``keep_text``.
    Raises :class:`DataError` for a missing directory, no logs at all, or an unreadable file.
    """
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
            "that the service records traffic (TEXTCLF_TRAFFIC_DIR)."
        )
    scan = TrafficScan(directory, since, max_rows, seed, keep_text)
    known = frozenset(labels) if labels is not None else None
    for path in files:
        try:
            if since is not None and path.stat().st_mtime < since.timestamp():
                scan.files_before_window.append(path.name)
                continue
            with path.open("rb") as fh:
                scan.files.append(path.name)
                scan.read(fh, path.name, known)
        except FileNotFoundError:  # rotated away since it was listed
            scan.files_gone.append(path.name)
        except OSError as err:
            raise DataError(
                f"cannot read traffic log {path} ({err.strerror or err}). Fix: check the "
                "volume and its permissions (the drift job reads it as uid 1034)."
            ) from None
    return scan


def read_traffic(directory: Path, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Every valid recorded prediction in ``directory`` as a frame (no window, no sampling)."""
    return scan_traffic(directory, labels).frame()


def drift_check(
    traffic_dir: Path,
    reference_path: Path,
    cfg: DriftParams | None = None,
    out_dir: Path | None = None,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Judge the traffic recorded since ``since`` against the reference profile.

    ``since`` defaults to ``drift.window_hours`` before ``now``; ``cfg`` to the params saved
    with the profile. The summary's ``verdict`` (:class:`Verdict`) and ``reasons`` say what
    was found, ``notes`` what was left out; ``out_dir`` also gets summary.json (and Evidently's
    report.html when the rows were compared).
    """
    reference, meta = load_reference_profile(reference_path)
    if cfg is None:
        cfg = validate(
            DriftParams, meta.get("params", {}), f"drift params of {reference_path}", "keys"
        )
    now = now or datetime.now(UTC)
    since = since or now - timedelta(hours=cfg.window_hours)
    labels = meta.get("labels") or sorted(reference["prediction"].unique())
    scan = scan_traffic(
        traffic_dir,
        labels,
        since=since,
        max_rows=cfg.max_rows,
        seed=cfg.seed,
        keep_text=cfg.text_content,  # Evidently needs the texts only for the text column
    )
    reasons: list[str] = []
    notes: list[str] = []
    degraded = scan.invalid_share > cfg.max_invalid_share
    if degraded:
        reasons.append(
            f"{scan.n_skipped} of {scan.rows + scan.n_skipped} lines in the window are "
            f"invalid (share {scan.invalid_share:.4f} > drift.max_invalid_share "
            f"{cfg.max_invalid_share:g}): see traffic.skipped"
        )
    snapshot = None
    if scan.rows < cfg.min_rows:
        reasons.append(
            f"{scan.rows} valid row(s) since {_iso(since)}, fewer than drift.min_rows = "
            f"{cfg.min_rows}: too few to test for drift"
        )
        result: dict[str, Any] = {"drift_detected": False}
        verdict = Verdict.DEGRADED if degraded else Verdict.INSUFFICIENT_DATA
    else:
        current = scan.frame()
        if cfg.text_content and current["text"].isna().any():
            notes.append(
                f"drift.text_content is on, but {scan.rows_without_text} of {scan.rows} rows "
                "have no text (the service drops or hashes texts): the text column is left out"
            )
        result, snapshot = compare(reference.drop(columns=["label"], errors="ignore"), current, cfg)
        reasons += result.pop("reasons")  # the verdict's reasons replace the comparison's
        verdict = (
            Verdict.DEGRADED
            if degraded
            else Verdict.DRIFT
            if result["drift_detected"]
            else Verdict.OK
        )
        # Exact over the window, not only the sample Evidently compared.
        result["prediction_shares"]["current"] = {
            k: n / scan.rows for k, n in sorted(scan.predictions.items())
        }
        result["confidence_mean"]["current"] = scan.confidence_sum / scan.rows
    if scan.files_before_window:
        notes.append(
            f"{len(scan.files_before_window)} file(s) last written before the window were not read"
        )
    if scan.sample and len(scan.sample) < scan.rows:
        notes.append(
            f"Evidently compared a uniform sample of {len(scan.sample)} of the window's "
            f"{scan.rows} rows (drift.max_rows)"
        )
    expected = meta.get("model_version")
    summary = {
        "verdict": verdict.value,
        "reasons": reasons,
        "notes": notes,
        **result,
        "rows": {"reference": len(reference), "current": len(scan.sample), "window": scan.rows},
        "window": {"since": _iso(since), "until": _iso(now)},
        "traffic": scan.summary(),
        "reference": {"path": str(reference_path), "model_version": expected},
        "model_version_mismatch": bool(expected)
        and bool(scan.model_versions)
        and set(scan.model_versions) != {expected},
    }
    if out_dir is not None:
        summary_path, html_path = Path(out_dir) / "summary.json", Path(out_dir) / "report.html"
        if snapshot is not None:
            write_outputs(summary, snapshot, summary_path, html_path)
        else:
            html_path.unlink(missing_ok=True)  # not this run's: nothing was compared
            io.write_json(summary_path, summary)
    return summary
