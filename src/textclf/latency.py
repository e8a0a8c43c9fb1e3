"""Wall-clock timing of batched inference: percentiles and throughput (stdlib and numpy only).

Shared by the export stage and the benchmarks so both report latency the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from textclf.data.text import TextEncoder, length_sorted_batches

B = TypeVar("B")


def summarize(seconds: Sequence[float], texts: int) -> dict[str, float]:
    """p50/p95/p99 of per-call latencies (ms) and throughput (texts/s) over ``texts`` texts."""
    arr = np.asarray(seconds, dtype=np.float64)
    total = float(arr.sum())
    return {
        "calls": len(arr),
        "texts": texts,
        "p50_ms": round(float(np.percentile(arr, 50)) * 1e3, 3),
        "p95_ms": round(float(np.percentile(arr, 95)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(arr, 99)) * 1e3, 3),
        "mean_ms": round(float(arr.mean()) * 1e3, 3),
        "texts_per_s": round(texts / max(total, 1e-9), 2),
    }


def time_engines(
    engines: Mapping[str, Callable[[B], Any]],
    batches: Sequence[B],
    sizes: Sequence[int],
    runs: int = 1,
    warmup: int = 0,
) -> dict[str, dict[str, Any]]:
    """Call every engine on every batch, ``runs`` passes, after ``warmup`` untimed calls each.

    The engines take turns pass by pass (in a rotated order), so a slow spell on a shared
    machine hits all of them rather than one. Per engine: :func:`summarize` over all its calls,
    and each pass's texts/s (``runs_texts_per_s``).
    """
    if not batches:
        raise ValueError("nothing to time: no batches")
    for fn in engines.values():
        call_seconds(fn, [batches[i % len(batches)] for i in range(warmup)])
    names = list(engines)
    texts = int(sum(sizes))
    seconds: dict[str, list[float]] = {name: [] for name in names}
    per_run: dict[str, list[float]] = {name: [] for name in names}
    for r in range(runs):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            calls = call_seconds(engines[name], batches)
            seconds[name] += calls
            per_run[name].append(round(texts / max(sum(calls), 1e-9), 2))
    return {
        name: {**summarize(seconds[name], texts=texts * runs), "runs_texts_per_s": per_run[name]}
        for name in names
    }


def call_seconds(fn: Callable[[B], Any], batches: Sequence[B]) -> list[float]:
    """Wall-clock seconds of ``fn(batch)`` for each batch, in order."""
    seconds = []
    for batch in batches:
        started = time.perf_counter()
        fn(batch)
        seconds.append(time.perf_counter() - started)
    return seconds


def padded_batches(
    encoder: TextEncoder, texts: Sequence[str], batch_size: int
) -> tuple[list[dict[str, np.ndarray]], list[int]]:
    """Length-sorted, padded int64 batches of ``texts`` and their sizes (what every engine gets)."""
    ids = encoder.encode(texts)
    order = length_sorted_batches([len(x) for x in ids], batch_size)
    return [encoder.pad([ids[i] for i in batch]) for batch in order], [len(b) for b in order]


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator`` rounded to 3 places; None when the denominator is 0."""
    return round(numerator / denominator, 3) if denominator else None


def format_ratio(value: float | None) -> str:
    """A ratio as ``1.23x`` for Markdown tables; ``n/a`` when it could not be computed."""
    return "n/a" if value is None else f"{value:.2f}x"
