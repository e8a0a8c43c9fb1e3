"""The service's request batcher, with a model that blocks until the test lets it go.

No timing: a call is held on a ``threading.Event`` while the test queues requests, and the
queue limit is checked with a fake clock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from textclf.serving.batching import Batcher, BatchStats, ModelTimeoutError, OverloadedError

T = TypeVar("T")


class HeldModel:
    """Upper-cases texts; each call waits until :meth:`release` (or runs at once if not held)."""

    def __init__(self, hold: bool = True) -> None:
        self.calls: list[list[str]] = []
        self.started = threading.Semaphore(0)
        self._go = threading.Event()
        if not hold:
            self._go.set()
        self.fail_next = False

    def __call__(self, texts: list[str]) -> list[str]:
        self.calls.append(list(texts))
        self.started.release()
        assert self._go.wait(timeout=30), "the test never released the model"
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("model exploded")
        return [t.upper() for t in texts]

    def release(self) -> None:
        self._go.set()

    async def wait_started(self) -> None:
        """Until the model has been entered once more (on the batcher's thread)."""
        assert await asyncio.to_thread(self.started.acquire, True, 30)


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(asyncio.wait_for(main(), timeout=60))


async def _queued(batcher: Batcher[Any], n: int) -> None:
    """Until ``n`` requests wait in the batcher's queue (submit appends before it awaits)."""
    for _ in range(1000):
        if batcher.queued >= n:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{n} requests never queued")


def test_an_idle_batcher_runs_a_request_at_once_and_alone() -> None:
    model = HeldModel(hold=False)
    batcher = Batcher(model, max_texts=8, max_queue_s=10)

    async def main() -> list[list[str]]:
        return [await batcher.submit(["a", "b"]), await batcher.submit(["c"])]

    assert _run(main) == [["A", "B"], ["C"]]
    assert model.calls == [["a", "b"], ["c"]]


def test_requests_that_queue_during_a_call_share_the_next_one_in_order() -> None:
    model = HeldModel()
    stats: list[BatchStats] = []
    batcher = Batcher(model, max_texts=8, max_queue_s=10, on_batch=stats.append)

    async def main() -> list[list[str]]:
        first = asyncio.create_task(batcher.submit(["first"]))
        await model.wait_started()
        rest = [asyncio.create_task(batcher.submit(texts)) for texts in (["b1", "b2"], ["c"])]
        await _queued(batcher, 2)
        model.release()
        return [await first, *[await r for r in rest]]

    assert _run(main) == [["FIRST"], ["B1", "B2"], ["C"]]
    assert model.calls == [["first"], ["b1", "b2", "c"]]
    assert [(s.requests, s.texts) for s in stats] == [(1, 1), (2, 3)]


def test_parallel_calls_run_at_once_and_the_next_batch_waits_for_a_free_slot() -> None:
    model = HeldModel()
    batcher = Batcher(model, max_texts=8, max_queue_s=10, parallel_calls=2)

    async def main() -> list[list[str]]:
        one = asyncio.create_task(batcher.submit(["one"]))
        await model.wait_started()
        two = asyncio.create_task(batcher.submit(["two"]))
        await model.wait_started()  # a second call runs while the first is held
        rest = [asyncio.create_task(batcher.submit([t])) for t in ("three", "four")]
        await _queued(batcher, 2)  # both slots busy: these wait, and then share one call
        model.release()
        return [await one, await two, *[await r for r in rest]]

    assert _run(main) == [["ONE"], ["TWO"], ["THREE"], ["FOUR"]]
    assert model.calls == [["one"], ["two"], ["three", "four"]]


def test_while_a_call_runs_requests_that_arrive_together_share_the_free_slot() -> None:
    """Only an idle batcher starts a request in ``submit``; under load the queue forms batches,
    so two requests that arrive together take the free slot as one call, not one each."""
    model = HeldModel()
    batcher = Batcher(model, max_texts=8, max_queue_s=10, parallel_calls=2)

    async def main() -> list[list[str]]:
        one = asyncio.create_task(batcher.submit(["one"]))
        await model.wait_started()
        together = [asyncio.create_task(batcher.submit([t])) for t in ("two", "three")]
        await model.wait_started()  # the free slot's call, while "one" is held
        model.release()
        return [await one, *[await task for task in together]]

    assert _run(main) == [["ONE"], ["TWO"], ["THREE"]]
    assert model.calls == [["one"], ["two", "three"]]


def test_a_call_while_no_other_runs_takes_the_lone_session_and_overlapping_ones_do_not() -> None:
    lone, shared = HeldModel(), HeldModel()
    batcher = Batcher(shared, max_texts=1, max_queue_s=10, parallel_calls=2, lone_fn=lone)

    async def main() -> list[list[str]]:
        one = asyncio.create_task(batcher.submit(["one"]))
        await lone.wait_started()  # idle batcher: the lone session
        two = asyncio.create_task(batcher.submit(["two"]))
        await shared.wait_started()  # "one" still runs: the shared one
        lone.release()
        shared.release()
        answers = [await one, await two]
        answers.append(await batcher.submit(["three"]))  # idle again: lone
        # Two batches formed back to back from an idle batcher: only the first is lone.
        both = [asyncio.create_task(batcher.submit([t])) for t in ("four", "five")]
        return answers + [await task for task in both]

    assert _run(main) == [["ONE"], ["TWO"], ["THREE"], ["FOUR"], ["FIVE"]]
    assert lone.calls == [["one"], ["three"], ["four"]]
    assert shared.calls == [["two"], ["five"]]


def test_without_a_lone_session_every_call_runs_the_model() -> None:
    model = HeldModel(hold=False)
    batcher = Batcher(model, max_texts=1, max_queue_s=10, parallel_calls=2)

    async def main() -> list[list[str]]:
        return [await batcher.submit(["a"]), await batcher.submit(["b"])]

    assert _run(main) == [["A"], ["B"]]
    assert model.calls == [["a"], ["b"]]


def test_close_cancels_what_waits_and_the_next_request_starts_afresh() -> None:
    model = HeldModel()
    batcher = Batcher(model, max_texts=8, max_queue_s=10)

    async def main() -> list[str]:
        running = asyncio.create_task(batcher.submit(["running"]))
        await model.wait_started()
        waiting = asyncio.create_task(batcher.submit(["waiting"]))
        await _queued(batcher, 1)
        batcher.close()
        for task in (running, waiting):
            with pytest.raises(asyncio.CancelledError):
                await task
        model.release()
        return await batcher.submit(["after close"])

    assert _run(main) == ["AFTER CLOSE"]
    assert model.calls == [["running"], ["after close"]]  # "waiting" never ran


def test_a_call_takes_whole_requests_up_to_max_texts() -> None:
    model = HeldModel()
    batcher = Batcher(model, max_texts=4, max_queue_s=10)

    async def main() -> list[list[str]]:
        first = asyncio.create_task(batcher.submit(["x"]))
        await model.wait_started()
        sizes = (3, 3, 6, 1)  # 3+3 > 4: split between requests; 6 > 4 runs alone
        rest = [
            asyncio.create_task(batcher.submit([f"r{i}-{j}" for j in range(n)]))
            for i, n in enumerate(sizes)
        ]
        await _queued(batcher, len(sizes))
        model.release()
        await first
        return [await r for r in rest]

    results = _run(main)
    assert [len(r) for r in results] == [3, 3, 6, 1]
    assert [len(call) for call in model.calls] == [1, 3, 3, 6, 1]


def test_a_request_queued_too_long_is_shed_with_the_fix() -> None:
    now = [0.0]
    model = HeldModel()
    shed: list[float] = []
    batcher = Batcher(
        model, max_texts=8, max_queue_s=0.5, on_shed=shed.append, clock=lambda: now[0]
    )

    async def main() -> tuple[list[str], BaseException | list[str], list[str]]:
        first = asyncio.create_task(batcher.submit(["first"]))
        await model.wait_started()
        late = asyncio.create_task(batcher.submit(["late"]))
        await _queued(batcher, 1)
        now[0] = 0.75  # "late" has now waited 750 ms
        on_time = asyncio.create_task(batcher.submit(["on time"]))
        await _queued(batcher, 2)
        model.release()
        late_result = (await asyncio.gather(late, return_exceptions=True))[0]
        return await first, late_result, await on_time

    first, late, on_time = _run(main)
    assert (first, on_time) == (["FIRST"], ["ON TIME"])
    assert isinstance(late, OverloadedError)
    assert "waited 750 ms" in str(late) and "serve.batching.max_queue_ms (500 ms)" in str(late)
    assert "Fix:" in str(late)
    assert shed == [0.75]
    assert model.calls == [["first"], ["on time"]]  # the shed request never reached the model


def test_a_cancelled_request_never_reaches_the_model() -> None:
    model = HeldModel()
    batcher = Batcher(model, max_texts=8, max_queue_s=10)

    async def main() -> list[str]:
        first = asyncio.create_task(batcher.submit(["first"]))
        await model.wait_started()
        gone = asyncio.create_task(batcher.submit(["client gone"]))
        kept = asyncio.create_task(batcher.submit(["kept"]))
        await _queued(batcher, 2)
        gone.cancel()
        model.release()
        await first
        return await kept

    assert _run(main) == ["KEPT"]
    assert model.calls == [["first"], ["kept"]]


def test_a_model_error_fails_its_batch_only() -> None:
    model = HeldModel(hold=False)
    model.fail_next = True
    batcher = Batcher(model, max_texts=8, max_queue_s=10)

    async def main() -> list[str]:
        with pytest.raises(RuntimeError, match="model exploded"):
            await batcher.submit(["boom"])
        return await batcher.submit(["after"])

    assert _run(main) == ["AFTER"]


def test_a_wrong_result_count_is_an_error_not_a_misaligned_answer() -> None:
    batcher = Batcher(lambda texts: texts[:-1], max_texts=8, max_queue_s=10)

    async def main() -> None:
        with pytest.raises(RuntimeError, match="returned 1 results for 2"):
            await batcher.submit(["a", "b"])

    _run(main)


def test_a_failing_statistics_callback_does_not_stop_batching() -> None:
    def broken(_stats: BatchStats) -> None:
        raise ValueError("metrics backend down")

    batcher = Batcher(HeldModel(hold=False), max_texts=8, max_queue_s=10, on_batch=broken)

    async def main() -> list[list[str]]:
        return [await batcher.submit(["a"]), await batcher.submit(["b"])]

    assert _run(main) == [["A"], ["B"]]


def test_each_event_loop_gets_its_own_queue() -> None:
    """A test client (or a reloaded worker) may run requests on a new loop."""
    batcher = Batcher(HeldModel(hold=False), max_texts=8, max_queue_s=10)

    async def main() -> list[str]:
        return await batcher.submit(["again"])

    assert _run(main) == ["AGAIN"]
    assert _run(main) == ["AGAIN"]


@pytest.mark.parametrize(("max_texts", "max_queue_s", "calls"), [(0, 1, 1), (4, 0, 1), (4, 1, 0)])
def test_bad_limits_are_rejected(max_texts: int, max_queue_s: float, calls: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Batcher(lambda t: t, max_texts=max_texts, max_queue_s=max_queue_s, parallel_calls=calls)


def test_a_hanging_model_call_fails_its_batch_and_all_hung_slots_mean_not_alive() -> None:
    """Past call_timeout_s a batch gets ModelTimeoutError; its slot stays taken until the
    thread returns, and the batcher is not alive while every slot is held that way."""
    model = HeldModel()
    timeouts: list[float] = []
    batcher = Batcher(
        model,
        max_texts=8,
        max_queue_s=60,
        parallel_calls=2,
        call_timeout_s=0.05,
        on_timeout=timeouts.append,
    )

    async def main() -> tuple[list[BaseException | list[str]], list[bool], list[str]]:
        alive = [batcher.alive]
        first = await asyncio.gather(batcher.submit(["one"]), return_exceptions=True)
        alive.append(batcher.alive)  # one of two slots hung
        second = await asyncio.gather(batcher.submit(["two"]), return_exceptions=True)
        alive.append(batcher.alive)  # both hung: not alive
        waiting = asyncio.create_task(batcher.submit(["three"]))
        await _queued(batcher, 1)  # no free slot: it waits in the queue, not on a thread
        model.release()
        third = await waiting
        alive.append(batcher.alive)
        return [*first, *second], alive, third

    (first, second), alive, third = _run(main)
    for result in (first, second):
        assert isinstance(result, ModelTimeoutError), result
        assert "serve.model_timeout_ms (50 ms)" in str(result) and "Fix:" in str(result)
    assert alive == [True, True, False, True]
    assert third == ["THREE"]
    assert len(timeouts) == 2 and all(t >= 0.05 for t in timeouts)
    batcher.close()


def test_without_a_timeout_a_slow_call_keeps_the_batcher_alive() -> None:
    """Negative control of the test above: the same held model, no call timeout."""
    model = HeldModel()
    batcher = Batcher(model, max_texts=8, max_queue_s=60, parallel_calls=1)

    async def main() -> tuple[bool, list[str]]:
        task = asyncio.create_task(batcher.submit(["slow"]))
        await model.wait_started()
        await asyncio.sleep(0.1)
        alive = batcher.alive
        model.release()
        return alive, await task

    assert _run(main) == (True, ["SLOW"])
