"""Request batching for the service: each model call takes what queued while the last one ran.

BentoML's adaptive batching (``batchable=True``) holds requests back on purpose, for a time it
learns from the queueing delay of recent batches, so after a burst it keeps holding them. Measured
here: after 6 s of 32 concurrent clients, one client's median latency went from 11 ms to 67 ms
(its throughput from 91 to 15 texts/s) and was still 53 ms 15 s later; 14 ms with this batcher.

:class:`Batcher` never waits on purpose. A request that finds the model idle runs at once, alone;
requests that arrive while the model is busy queue, and the next call takes all of them, up to
``max_texts`` texts (a request is never split). So batches grow with the load and an idle service
answers in one model call; such a request (no call running, nothing queued) starts its call in
:meth:`Batcher.submit` itself, without waking the consumer task. Under load every request goes
through the queue, so a call takes all that arrived meanwhile. A request that has queued
longer than ``max_queue_s`` is answered :class:`OverloadedError` (a 503 from the service)
instead of making every later one late too.

Up to ``parallel_calls`` model calls run at once, each on a thread of the batcher's own (ONNX
Runtime releases the GIL), so the event loop keeps accepting and parsing requests meanwhile. A
batch is formed when a call slot frees up, so it takes everything that queued until then. Two
calls with one ONNX Runtime thread each keep two cores busy without the stalls of one call on
two threads, whose every parallel op waits for a thread the event loop may have preempted.
A call that starts while no other call runs (a lone request, or the first batch after a quiet
spell) runs ``lone_fn`` instead of ``fn`` when one is given: the service's model session with
a thread per core, so a lone request is not left on one core while the others idle.

A model call that runs longer than ``call_timeout_s`` fails its batch with
:class:`ModelTimeoutError` at once; its thread cannot be stopped, so its slot stays taken until
the call returns. While every slot is held by such a call, :attr:`Batcher.alive` is false (the
service's liveness probe fails and the kubelet restarts the container) and new requests are
shed by the queue limit instead of waiting for ever.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

R = TypeVar("R")
T = TypeVar("T")
logger = logging.getLogger(__name__)


class OverloadedError(Exception):
    """A request waited longer than the queue limit; the service answers 503."""


class ModelTimeoutError(OverloadedError):
    """The model call of a request's batch ran longer than the call timeout (also a 503)."""


@dataclass
class _Job(Generic[R]):
    texts: Sequence[str]
    enqueued: float
    future: asyncio.Future[list[R]]


@dataclass
class _LoopState(Generic[R]):
    """The queue and the consumer task of one event loop."""

    loop: asyncio.AbstractEventLoop
    slots: asyncio.Semaphore
    executor: ThreadPoolExecutor
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    queue: collections.deque[_Job[R]] = field(default_factory=collections.deque)
    task: asyncio.Task[None] | None = None
    calls: set[_Call[R]] = field(default_factory=set)  # answered or not, thread not returned
    running: int = 0  # model calls started whose thread has not returned (timed-out ones too)


@dataclass(eq=False)
class _Call(Generic[R]):
    """One model call in flight: its batch, its timeout timer, and whether it ran past it."""

    batch: list[_Job[R]]
    started: float
    timer: asyncio.TimerHandle | None = None
    overdue: bool = False


@dataclass(frozen=True)
class BatchStats:
    """What one model call merged: requests, texts, and the oldest request's queueing delay."""

    requests: int
    texts: int
    queued_s: float


class Batcher(Generic[R]):
    """Merge concurrent requests into model calls; see the module docstring.

    ``fn`` maps a list of texts to one result per text, in order; it runs on one of the
    batcher's ``parallel_calls`` threads, so it must be thread-safe when there are several.
    ``lone_fn`` (same contract) runs instead of ``fn`` for a call that starts while no other
    call runs. ``on_batch`` is called (on the event loop) before each call with its
    :class:`BatchStats`; ``on_shed`` with the queueing delay of each request answered
    :class:`OverloadedError`.
    """

    def __init__(
        self,
        fn: Callable[[list[str]], Sequence[R]],
        max_texts: int,
        max_queue_s: float,
        parallel_calls: int = 1,
        on_batch: Callable[[BatchStats], None] | None = None,
        on_shed: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        call_timeout_s: float | None = None,
        on_timeout: Callable[[float], None] | None = None,
        lone_fn: Callable[[list[str]], Sequence[R]] | None = None,
    ) -> None:
        if max_texts < 1:
            raise ValueError(f"max_texts must be >= 1, got {max_texts}")
        if max_queue_s <= 0:
            raise ValueError(f"max_queue_s must be > 0, got {max_queue_s}")
        if parallel_calls < 1:
            raise ValueError(f"parallel_calls must be >= 1, got {parallel_calls}")
        if call_timeout_s is not None and call_timeout_s <= 0:
            raise ValueError(f"call_timeout_s must be > 0, got {call_timeout_s}")
        self.call_timeout_s = call_timeout_s
        self.on_timeout = on_timeout
        self._overdue = 0  # calls past the timeout whose thread has not returned yet
        self.parallel_calls = parallel_calls
        self.fn = fn
        self.lone_fn = lone_fn
        self.max_texts = max_texts
        self.max_queue_s = max_queue_s
        self.on_batch = on_batch
        self.on_shed = on_shed
        self.clock = clock
        self._state: _LoopState[R] | None = None

    async def submit(self, texts: Sequence[str]) -> list[R]:
        """The results for ``texts``, computed in the next model call that has room for them."""
        state = self._loop_state()
        future: asyncio.Future[list[R]] = state.loop.create_future()
        state.queue.append(_Job(texts, self.clock(), future))
        if state.running or len(state.queue) > 1 or state.slots.locked():
            state.wake.set()
        else:  # idle (no call, nothing else queued): this request is the next call, started here
            await state.slots.acquire()  # free, so it returns without yielding
            self._start(state, self._take(state.queue))
        return await future

    @property
    def alive(self) -> bool:
        """False while every call slot is held by a call that ran past ``call_timeout_s``."""
        return self._overdue < self.parallel_calls

    @property
    def queued(self) -> int:
        """Requests waiting for the model now (not counting the call that runs)."""
        return len(self._state.queue) if self._state is not None else 0

    def close(self) -> None:
        """Stop the consumer task and the model threads (pending requests are cancelled); the
        next :meth:`submit` starts afresh."""
        if self._state is not None:
            for job in [*self._state.queue, *(j for c in self._state.calls for j in c.batch)]:
                job.future.cancel()
            for call in self._state.calls:
                if call.timer is not None:
                    call.timer.cancel()
            if self._state.task is not None:
                self._state.task.cancel()
            self._state.executor.shutdown(wait=False, cancel_futures=True)
            self._state = None

    def _loop_state(self) -> _LoopState[R]:
        """This event loop's queue and consumer (a server has one loop per worker; a test
        client may start a new loop per client)."""
        loop = asyncio.get_running_loop()
        state = self._state
        if state is None or state.loop is not loop or state.task is None or state.task.done():
            if state is not None:
                state.executor.shutdown(wait=False)
            state = _LoopState(
                loop,
                asyncio.Semaphore(self.parallel_calls),
                ThreadPoolExecutor(self.parallel_calls, thread_name_prefix="textclf-model"),
            )
            state.task = loop.create_task(self._consume(state), name="textclf-batcher")
            self._state = state
        return state

    async def _consume(self, state: _LoopState[R]) -> None:
        while True:
            await state.wake.wait()
            state.wake.clear()
            while state.queue:
                # A batch is formed when a call slot is free, so it takes all that queued.
                await state.slots.acquire()
                self._start(state, self._take(state.queue))

    def _take(self, queue: collections.deque[_Job[R]]) -> list[_Job[R]]:
        """Whole requests from the head of the queue, up to ``max_texts`` texts (at least one
        request); drops requests whose client is gone and sheds those queued too long."""
        now = self.clock()
        batch: list[_Job[R]] = []
        size = 0
        while queue:
            job = queue[0]
            if job.future.done():  # cancelled: the client disconnected or timed out
                queue.popleft()
                continue
            waited = now - job.enqueued
            if waited > self.max_queue_s:
                queue.popleft()
                job.future.set_exception(
                    OverloadedError(
                        f"the service is overloaded: this request waited {waited * 1000:.0f} ms "
                        f"for the model, longer than serve.batching.max_queue_ms "
                        f"({self.max_queue_s * 1000:.0f} ms). Fix: retry with backoff; if it "
                        "persists, add replicas or workers."
                    )
                )
                _notify(self.on_shed, waited)
                continue
            if batch and size + len(job.texts) > self.max_texts:
                break
            queue.popleft()
            batch.append(job)
            size += len(job.texts)
        if batch:
            _notify(self.on_batch, BatchStats(len(batch), size, now - batch[0].enqueued))
        return batch

    def _start(self, state: _LoopState[R], batch: list[_Job[R]]) -> None:
        """Start one model call on a model thread; its slot is released when the thread returns.

        The call runs ``lone_fn`` when no other call runs, chosen here as each call starts, so
        calls started back to back see each other. An empty batch (every request it found was
        cancelled or shed) only gives the slot back.

        No task, no asyncio wrapper future: the thread's result is handed to the event loop once
        (``call_soon_threadsafe``) and a timer fails the batch if the call runs too long. At one
        request per call this hand-off is most of the batcher's cost per request.
        """
        if not batch:
            state.slots.release()
            return
        loop = state.loop
        texts = [text for job in batch for text in job.texts]
        call = _Call(batch, time.monotonic())  # the timeout runs on the loop's clock
        fn = self.fn if self.lone_fn is None or state.running else self.lone_fn
        state.running += 1
        try:
            work = state.executor.submit(fn, texts)
        except BaseException:
            state.running -= 1
            state.slots.release()
            raise
        state.calls.add(call)
        if self.call_timeout_s is not None:
            call.timer = loop.call_later(self.call_timeout_s, self._expire, call)

        def returned(done: concurrent.futures.Future[Sequence[R]]) -> None:  # model thread
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for these
                loop.call_soon_threadsafe(self._returned, state, call, done, len(texts))

        work.add_done_callback(returned)

    def _returned(
        self,
        state: _LoopState[R],
        call: _Call[R],
        work: concurrent.futures.Future[Sequence[R]],
        size: int,
    ) -> None:
        """On the event loop, once the model thread returned: free the slot, answer the batch."""
        state.running -= 1
        state.slots.release()
        state.calls.discard(call)
        if call.timer is not None:
            call.timer.cancel()
        if work.cancelled():  # close() cancelled it before it ran; its requests are cancelled
            return
        err = work.exception()
        if call.overdue:  # its requests were answered when it timed out
            self._overdue -= 1
            if err is not None:
                logger.warning("a model call that timed out failed later: %r", err)
            return
        results = work.result() if err is None else None
        if results is not None and len(results) != size:
            err = RuntimeError(f"the model returned {len(results)} results for {size}")
        start = 0
        for job in call.batch:
            end = start + len(job.texts)
            if not job.future.done():  # every request of the batch gets the model's error
                if err is not None:
                    job.future.set_exception(err)
                else:
                    assert results is not None
                    job.future.set_result(list(results[start:end]))
            start = end

    def _expire(self, call: _Call[R]) -> None:
        """A call ran past the timeout: fail its batch now, count it until its thread returns."""
        call.overdue = True
        self._overdue += 1
        ran_s = time.monotonic() - call.started
        _notify(self.on_timeout, ran_s)
        assert self.call_timeout_s is not None
        logger.warning(
            "a model call ran %.1f s, longer than serve.model_timeout_ms (%.0f ms); %d of %d "
            "call slots are held by calls past the timeout%s",
            ran_s,
            self.call_timeout_s * 1000,
            self._overdue,
            self.parallel_calls,
            " (worker not alive: /livez fails)" if not self.alive else "",
        )
        err = ModelTimeoutError(
            f"the model did not answer within serve.model_timeout_ms "
            f"({self.call_timeout_s * 1000:.0f} ms). Fix: retry with backoff; if it persists, "
            "the replica is unhealthy and is being restarted."
        )
        for job in call.batch:
            if not job.future.done():
                job.future.set_exception(err)


def _notify(callback: Callable[[T], None] | None, value: T) -> None:
    """Call a statistics callback; its failure is logged, never allowed to stop the batcher."""
    if callback is None:
        return
    try:
        callback(value)
    except Exception:
        logger.exception("batching statistics callback %r failed", callback)
