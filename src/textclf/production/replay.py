"""``textclf replay``: the workspace's exported model over recorded production requests.

Reads a traffic snapshot (or a traffic-log directory, snapshotted on the fly), runs the graph
serving would run over every request that kept its text, and compares with the production
answers the records hold: the share that changes, the changed-answer matrix (production label
-> new label), changes per slice (the ``slices`` families), the most confident changes, and the
latency on these texts. Where clients sent the true label (``POST /feedback``), accuracy and
macro-F1 of production and of this model on the same labelled requests, with paired bootstrap
intervals, and both confusion matrices. A record without text (traffic_log.text hash or drop)
counts for the label-level figures only (production's accuracy on feedback).

Writes ``reports/replay/summary.json`` (:class:`textclf.outputs.replay.ReplaySummary`) and
``summary.md``, atomically.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textclf import io
from textclf.config.replay import ReplayParams
from textclf.config.slices import SlicesParams
from textclf.errors import DataError
from textclf.inference import OnnxClassifier
from textclf.latency import summarize
from textclf.metrics import macro_f1
from textclf.monitoring.slices import slice_masks
from textclf.monitoring.snapshot import is_snapshot, read_manifest, snapshot_records, write_snapshot
from textclf.outputs.replay import (
    Interval,
    LabelledScores,
    Latency,
    ModelScores,
    ReplayExample,
    ReplaySummary,
    SliceChange,
)

SUMMARY_NAME = "summary.json"
MARKDOWN_NAME = "summary.md"


@dataclass(frozen=True)
class Request:
    """One recorded production request."""

    text: str | None
    label: str  # production's answer
    confidence: float
    model_version: str
    truth: str | None  # the label feedback gave, if any


def parse_request(record: dict[str, Any]) -> Request:
    """A snapshot record as a :class:`Request` (the snapshot writer validated its fields)."""
    probs = record["probabilities"]
    feedback = record.get("feedback")
    truth = feedback.get("label") if isinstance(feedback, dict) else None
    text = record.get("text")
    return Request(
        text if isinstance(text, str) else None,
        record["label"],
        float(max(probs.values())),
        record.get("model_version") or "unknown",
        truth if isinstance(truth, str) else None,
    )


def load_requests(
    traffic: Path, *, labelled_only: bool = False
) -> tuple[list[Request], dict[str, Any]]:
    """The requests of a snapshot or traffic-log directory (only those with feedback when
    ``labelled_only``: memory then grows with the labels, not the traffic), and the snapshot's
    manifest (its counts cover every request)."""
    traffic = Path(traffic)
    if not traffic.is_dir():
        raise DataError(
            f"{traffic} does not exist. Fix: pass a traffic-log directory or a snapshot "
            "(`textclf snapshot import` makes traffic/; `dvc pull traffic.dvc` fetches it)."
        )
    if is_snapshot(traffic):
        return _requests(traffic, labelled_only), read_manifest(traffic)
    with tempfile.TemporaryDirectory(prefix="textclf-replay-") as tmp:
        snapshot = write_snapshot(traffic, Path(tmp) / "snapshot")
        return _requests(snapshot, labelled_only), read_manifest(snapshot)


def _requests(snapshot: Path, labelled_only: bool) -> list[Request]:
    parsed = (parse_request(r) for r in snapshot_records(snapshot))
    return [r for r in parsed if r.truth is not None] if labelled_only else list(parsed)


def _interval(values: np.ndarray, confidence: float) -> Interval:
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return Interval(low=float(lo), high=float(hi))


def labelled_scores(
    truth: Sequence[str],
    answers: dict[str, Sequence[str]],
    labels: Sequence[str],
    cfg: ReplayParams,
) -> LabelledScores:
    """Accuracy and macro-F1 of each model's answers on the same labelled requests, with paired
    bootstrap intervals (one set of resamples for all models), the delta of the last model over
    the first, and each model's confusion matrix (true -> predicted)."""
    index = {label: i for i, label in enumerate(labels)}
    seen = {a for ans in answers.values() for a in ans} | set(truth)
    for label in sorted(seen - set(index)):  # a label this model lacks: scored, never right
        index[label] = len(index)
    y = np.array([index[t] for t in truth])
    preds = {name: np.array([index[a] for a in ans]) for name, ans in answers.items()}
    n = len(y)
    rng = np.random.default_rng(cfg.seed)
    draws = rng.integers(0, n, size=(cfg.bootstrap_resamples, n))
    boot_acc = {name: (p[draws] == y[draws]).mean(axis=1) for name, p in preds.items()}
    boot_f1 = {
        name: np.array([macro_f1(y[d], p[d], len(labels)) for d in draws])
        for name, p in preds.items()
    }
    names = list(answers)
    scores = {
        name: ModelScores(
            accuracy=float((p == y).mean()),
            macro_f1=macro_f1(y, p, len(labels)),
            accuracy_ci=_interval(boot_acc[name], cfg.confidence),
            macro_f1_ci=_interval(boot_f1[name], cfg.confidence),
            confusion=_confusion(truth, answers[name]),
        )
        for name, p in preds.items()
    }
    first, last = names[0], names[-1]
    return LabelledScores(
        requests=n,
        method=f"paired bootstrap, {cfg.bootstrap_resamples} resamples, "
        f"{cfg.confidence:.0%} percentile interval",
        models=scores,
        accuracy_delta=scores[last].accuracy - scores[first].accuracy,
        accuracy_delta_ci=_interval(boot_acc[last] - boot_acc[first], cfg.confidence),
        macro_f1_delta=scores[last].macro_f1 - scores[first].macro_f1,
        macro_f1_delta_ci=_interval(boot_f1[last] - boot_f1[first], cfg.confidence),
    )


def _confusion(truth: Iterable[str], answers: Iterable[str]) -> dict[str, dict[str, int]]:
    matrix: dict[str, Counter[str]] = {}
    for t, a in zip(truth, answers, strict=True):
        matrix.setdefault(t, Counter())[a] += 1
    return {t: dict(sorted(row.items())) for t, row in sorted(matrix.items())}


def _slices(
    texts: Sequence[str], changed: np.ndarray, cfg: SlicesParams
) -> dict[str, dict[str, SliceChange]]:
    out: dict[str, dict[str, SliceChange]] = {}
    for family, masks in slice_masks(texts, cfg).items():
        out[family] = {
            name: SliceChange(
                requests=int(mask.sum()),
                changed=int(changed[mask].sum()),
                changed_share=float(changed[mask].mean()) if mask.any() else None,
            )
            for name, mask in masks.items()
        }
    return out


def _latency(model: OnnxClassifier, texts: Sequence[str], cfg: ReplayParams) -> Latency | None:
    if not texts or not cfg.latency_samples:
        return None
    rng = np.random.default_rng(cfg.seed)
    take = rng.choice(len(texts), size=min(cfg.latency_samples, len(texts)), replace=False)
    sample = [texts[i] for i in take]
    model.predict_proba(sample[:1], 1)  # warm-up
    seconds = []
    for text in sample:
        start = time.perf_counter()
        model.predict_proba([text], 1)
        seconds.append(time.perf_counter() - start)
    stats = summarize(seconds, len(sample))
    return Latency(
        batch_size=1,
        texts=len(sample),
        p50_ms=stats["p50_ms"],
        p95_ms=stats["p95_ms"],
        p99_ms=stats["p99_ms"],
        texts_per_s=stats["texts_per_s"],
    )


def _examples(
    requests: Sequence[Request], new: Sequence[str], confidence: np.ndarray, cfg: ReplayParams
) -> list[ReplayExample]:
    changed = [i for i, (r, n) in enumerate(zip(requests, new, strict=True)) if r.label != n]
    changed.sort(key=lambda i: -float(confidence[i]))
    out = []
    for i in changed[: cfg.examples]:
        text = requests[i].text or ""
        cut = text if len(text) <= cfg.example_chars else text[: cfg.example_chars - 1] + "…"
        out.append(
            ReplayExample(
                text=cut,
                production=requests[i].label,
                production_confidence=requests[i].confidence,
                new=new[i],
                new_confidence=float(confidence[i]),
                truth=requests[i].truth,
            )
        )
    return out


def replay(
    traffic: Path,
    model_dir: Path,
    cfg: ReplayParams,
    slices: SlicesParams,
    *,
    variant: str | None = None,
) -> ReplaySummary:
    """Replay the requests of ``traffic`` through the export in ``model_dir``."""
    requests, manifest = load_requests(traffic)
    model = OnnxClassifier(model_dir, variant or cfg.variant, threads=cfg.threads)  # type: ignore[arg-type]
    with_text = [r for r in requests if r.text is not None]
    texts = [r.text or "" for r in with_text]
    notes = []
    if len(with_text) < len(requests):
        notes.append(
            f"{len(requests) - len(with_text)} of {len(requests)} requests were recorded without "
            "their text (serve.traffic_log.text hash or drop): they count only for production's "
            "label-level figures, not for the replay."
        )
    unknown = sorted({r.truth for r in requests if r.truth} - set(model.labels))
    if unknown:
        notes.append(f"feedback labels {unknown} are not this model's labels: never right here.")
    start = time.perf_counter()
    probs = model.predict_proba(texts, cfg.batch_size) if texts else np.zeros((0, 1))
    seconds = time.perf_counter() - start
    new = [model.labels[int(i)] for i in probs.argmax(axis=1)] if texts else []
    confidence = probs.max(axis=1) if texts else np.zeros(0)
    production = [r.label for r in with_text]
    changed = np.array([p != n for p, n in zip(production, new, strict=True)], dtype=bool)
    matrix: dict[str, Counter[str]] = {}
    for p, n in zip(production, new, strict=True):
        matrix.setdefault(p, Counter())[n] += 1
    labelled_all = [r for r in requests if r.truth is not None]
    labelled = [(r, n) for r, n in zip(with_text, new, strict=True) if r.truth is not None]
    production_only = (
        labelled_scores(
            [r.truth or "" for r in labelled_all],
            {"production": [r.label for r in labelled_all]},
            model.labels,
            cfg,
        )
        if labelled_all
        else None
    )
    compared = (
        labelled_scores(
            [r.truth or "" for r, _ in labelled],
            {
                "production": [r.label for r, _ in labelled],
                "candidate": [n for _, n in labelled],
            },
            model.labels,
            cfg,
        )
        if labelled
        else None
    )
    return ReplaySummary(
        requests=len(requests),
        replayed=len(with_text),
        changed=int(changed.sum()),
        changed_share=float(changed.mean()) if with_text else None,
        changed_matrix={p: dict(sorted(row.items())) for p, row in sorted(matrix.items())},
        slices=_slices(texts, changed, slices) if texts else {},
        examples=_examples(with_text, new, confidence, cfg),
        throughput_texts_per_s=round(len(texts) / seconds, 2) if texts and seconds > 0 else None,
        latency=_latency(model, texts, cfg),
        labelled=len(labelled_all),
        production=production_only,
        feedback=compared,
        model={"version": model.version, "variant": model.variant, "labels": model.labels},
        production_models=dict(Counter(r.model_version for r in requests)),
        snapshot={
            k: manifest.get(k)
            for k in ("since", "until", "first_ts", "last_ts", "requests", "labelled")
        }
        | {"sha256": manifest["files"]["traffic.jsonl"]["sha256"]},
        notes=notes,
    )


def write(summary: ReplaySummary, out_dir: Path) -> Path:
    """``summary.json`` and ``summary.md`` in ``out_dir`` (each atomically); the JSON's path."""
    from textclf.production.render import render_markdown

    path = summary.write(Path(out_dir) / SUMMARY_NAME)
    io.write_text(Path(out_dir) / MARKDOWN_NAME, render_markdown(summary, heading="###"))
    return path
