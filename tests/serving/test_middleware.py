"""The service's ASGI middleware on its own, around an app the test holds: limits and metrics.

The live tests (tests/serving/test_http.py) run the same middleware inside ``bentoml serve``;
here the inner app blocks on an event, so "in flight" is exact, and bodies arrive in chunks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from textclf.serving.middleware import Limits, RequestLimits

T = TypeVar("T")
Message = dict[str, Any]


class HeldApp:
    """Reads the whole body, then waits for :attr:`go` and answers 200 with the body size."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.entered = 0
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        self.entered += 1
        await self.go.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


async def _request(
    app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]], path: str = "/predict"
) -> tuple[int, dict[str, str], bytes, int]:
    """Send one request in ``chunks``; the status, headers, body and chunks the app took."""
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    pending = list(chunks)
    taken = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal taken
        if not pending:
            await asyncio.Event().wait()  # the client has nothing more: only a disconnect
        taken += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], response_headers, body, taken


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(asyncio.wait_for(main(), timeout=30))


LIMITS = Limits(max_body_bytes=1000, max_concurrency=2, retry_after_s=1)
JSON = [(b"content-type", b"application/json")]


def test_a_declared_length_over_the_limit_is_413_before_a_byte_is_read() -> None:
    inner = HeldApp()
    guarded = RequestLimits(inner, LIMITS)

    async def main() -> tuple[int, dict[str, str], bytes, int]:
        return await _request(
            guarded, [b"x" * 1000] * 20_000, [*JSON, (b"content-length", b"20000000")]
        )

    status, headers, body, taken = _run(main)
    assert status == 413
    assert taken == 0 and inner.entered == 0
    error = json.loads(body)["error"]
    assert "20000000 bytes" in error and "limit of 1000 bytes" in error
    assert "serve.yaml max_body_bytes" in error and "Fix:" in error
    assert headers["connection"] == "close"


def test_a_chunked_body_is_cut_off_just_past_the_limit() -> None:
    inner = HeldApp()
    guarded = RequestLimits(inner, LIMITS)

    async def main() -> tuple[int, dict[str, str], bytes, int]:
        return await _request(guarded, [b"x" * 300] * 1000, JSON)

    status, _, body, taken = _run(main)
    assert status == 413 and "limit of 1000 bytes" in json.loads(body)["error"]
    assert taken == 4  # 1200 bytes: the fourth chunk passed the limit, nothing more was read
    assert inner.entered == 0


def test_bodies_within_the_limit_reach_the_app_whole() -> None:
    """Negative control of the two tests above: at the limit, chunked or declared, it passes."""
    inner = HeldApp()
    inner.go.set()
    guarded = RequestLimits(inner, LIMITS)

    async def main() -> list[tuple[int, dict[str, str], bytes, int]]:
        chunked = await _request(guarded, [b"a" * 500, b"b" * 500], JSON)
        declared = await _request(guarded, [b"c" * 1000], [*JSON, (b"content-length", b"1000")])
        return [chunked, declared]

    results = _run(main)
    assert [(status, body) for status, _, body, _ in results] == [(200, b"1000")] * 2
    assert inner.bodies == [b"a" * 500 + b"b" * 500, b"c" * 1000]


def test_a_bad_content_length_is_400_naming_the_header() -> None:
    inner = HeldApp()

    async def main() -> tuple[int, dict[str, str], bytes, int]:
        return await _request(
            RequestLimits(inner, LIMITS), [b"{}"], [*JSON, (b"content-length", b"12abc")]
        )

    status, _, body, _ = _run(main)
    assert status == 400 and "Content-Length '12abc' is not a number" in json.loads(body)["error"]


def test_over_the_concurrency_cap_is_503_with_retry_after_and_nothing_read() -> None:
    inner = HeldApp()
    shed: list[int] = []
    guarded = RequestLimits(inner, LIMITS, on_shed=lambda: shed.append(1))

    async def main() -> tuple[list[Any], tuple[int, dict[str, str], bytes, int], int]:
        held = [
            asyncio.create_task(_request(guarded, [b'{"texts": ["a"]}'], JSON)) for _ in range(2)
        ]
        while inner.entered < 2:
            await asyncio.sleep(0)
        refused = await _request(guarded, [b'{"texts": ["b"]}'], JSON)
        inner.go.set()
        done = await asyncio.gather(*held)
        return done, refused, guarded.in_flight

    done, (status, headers, body, taken), in_flight = _run(main)
    assert [d[0] for d in done] == [200, 200]
    assert status == 503 and headers["retry-after"] == "1" and taken == 0
    error = json.loads(body)["error"]
    assert "2 requests in flight" in error and "serve.yaml max_concurrency" in error
    assert "Fix: retry after 1 s" in error
    assert shed == [1] and in_flight == 0


@pytest.mark.parametrize("path", ["/healthz", "/other"])
def test_other_paths_are_not_limited(path: str) -> None:
    inner = HeldApp()
    inner.go.set()

    async def main() -> tuple[int, dict[str, str], bytes, int]:
        return await _request(
            RequestLimits(inner, LIMITS), [b"x" * 5000], [(b"content-length", b"5000")], path
        )

    assert _run(main)[0] == 200
