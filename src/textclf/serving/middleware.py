"""ASGI middleware of the service: route-labelled HTTP metrics, request limits, JSON only.

BentoML 1.4's own HTTP metrics middleware labels ``endpoint`` with the raw request path, so a
scanner probing random URLs creates a new series (and metric file lines) per URL until the
pod's disk fills. The service turns BentoML's HTTP metrics off and :class:`RouteMetrics`
exports the same metrics, with the same names and labels, for the service's own routes only;
any other path is counted in one label-free counter. :class:`RequestLimits` refuses what
would cost memory before anything is parsed: a body over the size limit (413, without reading
the rest) and a request over the concurrency cap (503 with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
JSON_TYPES = (b"", b"application/json")
# The routes BentoML serves besides the APIs (the API routes are added by the service).
SYSTEM_ROUTES = ("/", "/healthz", "/livez", "/readyz", "/docs.json", "/schema.json")
METRICS_PATH = "/metrics"  # served here, not counted (BentoML never counted its scrapes)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value)
    return None


async def _answer(
    scope: Scope, receive: Receive, send: Send, status: int, error: str, **headers: str
) -> None:
    await JSONResponse({"error": error}, status_code=status, headers=headers or None)(
        scope, receive, send
    )


class JsonOnly:
    """Answer 415 to a POST on ``paths`` whose Content-Type is not JSON.

    BentoML would otherwise parse other media types (multipart forms, pickles) itself and
    answer a malformed one with a 500.
    """

    def __init__(self, app: ASGIApp, paths: tuple[str, ...] = ("/predict",)) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Reject non-JSON bodies on the guarded paths; pass everything else through."""
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            media = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
            if media not in JSON_TYPES:
                await _answer(
                    scope,
                    receive,
                    send,
                    415,
                    f"unsupported Content-Type {media.decode('latin-1')!r}. Fix: send "
                    "a JSON body with Content-Type: application/json, e.g. "
                    '{"texts": ["I love this phone"]}.',
                )
                return
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Limits:
    """What :class:`RequestLimits` enforces, with the serve.yaml keys its messages name."""

    max_body_bytes: int
    max_concurrency: int
    retry_after_s: int = 1


class RequestLimits:
    """Body-size cap (413) and concurrency cap (503 + ``Retry-After``) on ``paths``.

    A declared ``Content-Length`` over the limit is refused before a byte of the body is read;
    a chunked body is buffered up to the limit and refused as soon as it passes it, so the
    application never sees more than ``max_body_bytes``. ``on_shed`` is called for each
    request refused by the concurrency cap.
    """

    def __init__(
        self,
        app: ASGIApp,
        limits: Limits,
        paths: tuple[str, ...] = ("/predict",),
        on_shed: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.paths = paths
        self.on_shed = on_shed
        self.in_flight = 0  # one event loop per worker process: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Enforce the limits on the guarded paths; pass everything else through."""
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        limits = self.limits
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _answer(
                    scope,
                    receive,
                    send,
                    400,
                    f"Content-Length {declared.decode('latin-1')[:40]!r} is not a number. "
                    "Fix: send a valid Content-Length header or let the client set it.",
                )
                return
            if size > limits.max_body_bytes:
                await self._too_large(scope, receive, send, f"{size} bytes")
                return
        if self.in_flight >= limits.max_concurrency:
            if self.on_shed is not None:
                self.on_shed()
            await _answer(
                scope,
                receive,
                send,
                503,
                f"the service is at its concurrency cap: {limits.max_concurrency} requests "
                "in flight in this worker (serve.yaml max_concurrency). Fix: retry after "
                f"{limits.retry_after_s} s with backoff; if it persists, add replicas.",
                **{"Retry-After": str(limits.retry_after_s)},
            )
            return
        self.in_flight += 1
        try:
            if declared is None:  # chunked: read at most the limit before the app sees it
                body = await self._read_capped(receive)
                if body is None:
                    await self._too_large(scope, receive, send, "a chunked body larger")
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _read_capped(self, receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise asyncio.CancelledError  # the client is gone: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        limit = self.limits.max_body_bytes
        await _answer(
            scope,
            receive,
            send,
            413,
            f"the request body ({what}) is over the limit of {limit} bytes (serve.yaml "
            "max_body_bytes). Fix: send fewer or shorter texts per request (at most "
            "max_batch_size texts of max_text_chars characters each).",
            Connection="close",
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


@dataclass(frozen=True)
class RequestMetrics:
    """The metric objects :class:`RouteMetrics` updates (BentoML's names and labels)."""

    total: Any  # Counter: endpoint, service_name, service_version, http_response_code, runner_name
    duration: Any  # Histogram with the same labels
    in_progress: Any  # Gauge: endpoint, service_name, service_version, runner_name
    last_request: Any  # Gauge: service_name, service_version, runner_name
    unmatched: Any  # Counter without labels: requests to any other path


class RouteMetrics:
    """BentoML's HTTP request metrics, labelled by route; other paths in one label-free counter.

    Also serves ``GET /metrics`` from ``exposition()`` (body, content type). ``labels()`` gives
    ``service_name``, ``service_version`` and ``runner_name`` (known only once the server
    runs; read at a route's first request). A request cancelled before its response started is
    counted as a 504: in this stack only BentoML's timeout middleware cancels, and it answers 504.
    The labelled series of each route (and status) are looked up once, then kept.
    """

    def __init__(
        self,
        app: ASGIApp,
        routes: Collection[str],
        metrics: Callable[[], RequestMetrics],
        labels: Callable[[], dict[str, str]],
        exposition: Callable[[], tuple[bytes, str]],
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.routes = frozenset(routes)
        self.metrics = metrics
        self.labels = labels
        self.exposition = exposition
        self.clock = clock
        self._route_series: dict[str, tuple[Any, Any]] = {}  # path: (last_request, in_progress)
        self._status_series: dict[tuple[str, int], tuple[Any, Any]] = {}  # (total, duration)
        self._series_of: RequestMetrics | None = None  # the metrics these series belong to

    def _series(self, metrics: RequestMetrics, path: str) -> tuple[Any, Any]:
        if metrics is not self._series_of:  # a new set of metric objects: look up afresh
            self._series_of, self._route_series, self._status_series = metrics, {}, {}
        series = self._route_series.get(path)
        if series is None:
            own = self.labels()
            series = (
                metrics.last_request.labels(**own),
                metrics.in_progress.labels(**own, endpoint=path),
            )
            self._route_series[path] = series
        return series

    def _done_series(self, metrics: RequestMetrics, path: str, code: int) -> tuple[Any, Any]:
        series = self._status_series.get((path, code))
        if series is None:
            labels = {**self.labels(), "endpoint": path, "http_response_code": str(code)}
            series = (metrics.total.labels(**labels), metrics.duration.labels(**labels))
            self._status_series[(path, code)] = series
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count and time requests to known routes; count the others without a label."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == METRICS_PATH:
            await self._serve_metrics(scope, receive, send)
            return
        metrics = self.metrics()
        if path not in self.routes:
            metrics.unmatched.inc()
            await self.app(scope, receive, send)
            return
        last_request, in_progress = self._series(metrics, path)
        last_request.set_to_current_time()
        started, status = self.clock(), 0

        def done(code: int) -> None:
            total, duration = self._done_series(metrics, path, code)
            total.inc()
            duration.observe(max(self.clock() - started, 0.0))

        async def counted_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                done(status)
            await send(message)

        with in_progress.track_inprogress():
            try:
                await self.app(scope, receive, counted_send)
            except asyncio.CancelledError:
                if not status:
                    done(504)
                raise

    async def _serve_metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            response = Response(status_code=405, headers={"Allow": "GET, HEAD"})
        else:
            body, media_type = self.exposition()
            response = Response(body, media_type=media_type)
        await response(scope, receive, send)
