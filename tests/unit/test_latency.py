"""latency.time_engines: the timing every benchmark and the export stage share."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from textclf.latency import time_engines


def test_engines_take_turns_and_every_call_is_counted() -> None:
    order: list[tuple[str, str]] = []

    def engine(name: str) -> Callable[[str], None]:
        def call(batch: str) -> None:
            order.append((name, batch))
            time.sleep(0.002)  # measurable at the summary's 1 us resolution

        return call

    timed = time_engines({n: engine(n) for n in "abc"}, ["x", "y"], [3, 5], runs=3, warmup=1)
    assert order[:3] == [("a", "x"), ("b", "x"), ("c", "x")]  # one warm-up call each, first
    passes = [name for name, batch in order[3:] if batch == "x"]
    assert passes == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # rotated pass by pass
    for row in timed.values():
        assert row["calls"] == 6 and row["texts"] == 24
        assert len(row["runs_texts_per_s"]) == 3 and row["texts_per_s"] > 0
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]


def test_nothing_to_time_is_an_error() -> None:
    with pytest.raises(ValueError, match="no batches"):
        time_engines({"a": lambda _batch: None}, [], [])
