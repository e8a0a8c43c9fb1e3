"""Wall-clock timing of batched inference: percentiles and throughput (stdlib and numpy only).

Shared by the export stage and the benchmarks so both report latency the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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


def time_calls(
    fn: Callable[[B], Any],
    batches: Sequence[B],
    sizes: Sequence[int],
    runs: int = 1,
    warmup: int = 0,
) -> dict[str, float]:
    """Call ``fn`` on every batch, ``runs`` times, after ``warmup`` untimed calls; summarize."""
    if not batches:
        raise ValueError("nothing to time: no batches")
    for i in range(warmup):
        fn(batches[i % len(batches)])
    seconds: list[float] = []
    for _ in range(runs):
        seconds += call_seconds(fn, batches)
    return summarize(seconds, texts=int(sum(sizes)) * runs)


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
