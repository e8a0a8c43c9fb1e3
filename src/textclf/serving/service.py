"""The BentoML service: ONNX Runtime inference with request batching, validation, traffic log.

``POST /predict`` takes ``{"texts": [...]}`` and returns one prediction per text, each with a
signed id; ``POST /feedback`` takes the true labels of earlier predictions by those ids
(:mod:`textclf.serving.feedback`) and counts them per model version. Concurrent
requests are merged into one model call by :class:`textclf.serving.batching.Batcher`
(``serve.batching``): a call takes every request that queued while the previous one ran, and an
idle service runs a request at once. BentoML serves ``/healthz``, ``/livez``, ``/readyz`` (ready
once the model is loaded and warmed up: ``__is_ready__``; ``/livez`` fails while every model
call of a worker hangs past ``serve.model_timeout_ms``: ``__is_alive__``) and Prometheus
``/metrics``. ``serve.workers`` processes each load the model and batch their own requests.
The APIs' POSTs are answered by :class:`textclf.serving.direct.DirectRoutes` in the service's
own middleware (same validation, answers and log lines as BentoML's endpoint, a fraction of its
CPU per request); BentoML still documents them in ``/docs.json`` and serves everything else.

Hostile traffic is refused before it costs anything (:mod:`textclf.serving.middleware`): a body
over ``max_body_bytes`` gets 413 unread, a request over ``max_concurrency`` 503 with
``Retry-After``, a path that is not a route creates no metric series (BentoML's HTTP metrics,
which label the raw path, are off; the same metrics are exported per route), and a rejected
request's log line holds no input text.

Configuration (read when this module is imported; see :mod:`textclf.serving.settings`):
``TEXTCLF_MODEL_DIR``, ``TEXTCLF_ONNX_VARIANT``, ``TEXTCLF_TRAFFIC_DIR``, ``TEXTCLF_SERVE_FILE``,
and ``serve.yaml``. Imports no torch, Lightning or transformers.
"""

from __future__ import annotations

import collections
import functools
import logging
from typing import Any, cast

import bentoml
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.responses import JSONResponse, Response

from textclf.config.serve import REQUEST_TIMEOUT_S, AccessLog
from textclf.inference import OnnxClassifier
from textclf.serving import feedback as fb
from textclf.serving import ids
from textclf.serving.batching import Batcher, BatchStats, ModelTimeoutError, OverloadedError
from textclf.serving.direct import DirectRoutes, JsonRoute
from textclf.serving.middleware import (
    SYSTEM_ROUTES,
    JsonOnly,
    Limits,
    RequestLimits,
    RequestMetrics,
    RouteMetrics,
)
from textclf.serving.schemas import Prediction, request_model
from textclf.serving.settings import ServeSettings, load_settings, lone_call_threads
from textclf.serving.traffic import FeedbackLog, TrafficLog

logger = logging.getLogger("textclf.serving")

SETTINGS: ServeSettings = load_settings()
_LIMITS = SETTINGS.params
PredictRequest = request_model(_LIMITS.max_batch_size, _LIMITS.max_text_chars)
FeedbackRequest = fb.request_model(_LIMITS.max_batch_size)
RETRY_AFTER_S = 1  # Retry-After of a 503 from load shedding
ACCESS_LOGGER = "bentoml.access"  # BentoML's access log (its AccessLogMiddleware)
# BentoML's OpenTelemetry middleware skips the URLs its ``tracing.excluded_urls`` regexes match;
# this one matches every URL. Without an exporter (BentoML's default) the span is never recorded,
# yet making it cost about 0.5 ms of CPU per request, half of the service's own work per request
# (in-process measurement, model faked). Also gone with it: the ``X-BentoML-Request-ID`` header
# and the trace ids of the access log, which name that span.
UNTRACED = {"excluded_urls": ["."]}
# BentoML's HTTP request metrics, as RouteMetrics exports them (names, labels and buckets of
# BentoML 1.4's defaults, api_server.metrics.namespace "bentoml_service").
REQUEST_LABELS = [
    "endpoint",
    "service_name",
    "service_version",
    "http_response_code",
    "runner_name",
]
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


@functools.cache
def _metrics() -> dict[str, Any]:
    """Service-specific Prometheus metrics (created once per process, on first use).

    prometheus_client is imported here, in the worker, once ``bentoml serve`` has set
    ``PROMETHEUS_MULTIPROC_DIR``: imported earlier it would stay in single-process mode and
    these metrics would never reach ``/metrics``.
    """
    import prometheus_client

    return {
        "predictions": prometheus_client.Counter(
            name="textclf_predictions",
            documentation="texts classified, by predicted label",
            labelnames=["label", "model_version"],
        ),
        "traffic_errors": prometheus_client.Counter(
            name="textclf_traffic_log_errors",
            documentation="model calls (or feedback requests) whose traffic (or feedback) "
            "records could not be written",
        ),
        "traffic_dropped": prometheus_client.Counter(
            name="textclf_traffic_log_dropped",
            documentation="traffic or feedback records not written because the writer's "
            "queue was full (serve.traffic_log.queue_size) or the log was closing",
        ),
        "batch_texts": prometheus_client.Histogram(
            name="textclf_batch_texts",
            documentation="texts per model call (requests merged by the batcher)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
        ),
        "batch_requests": prometheus_client.Histogram(
            name="textclf_batch_requests",
            documentation="requests merged into one model call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        ),
        "queue_seconds": prometheus_client.Histogram(
            name="textclf_queue_seconds",
            documentation="how long the oldest request of a model call waited for the model",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        ),
        "shed": prometheus_client.Counter(
            name="textclf_shed_requests",
            documentation="requests answered 503 by load shedding, by reason: queue (waited "
            "longer than serve.batching.max_queue_ms), concurrency (over serve.max_concurrency), "
            "model_timeout (the model call ran past serve.model_timeout_ms)",
            labelnames=["reason"],
        ),
        "feedback": prometheus_client.Counter(
            name="textclf_feedback",
            documentation="feedback items counted, by true label, predicted label, whether "
            "they agree, and the model version that predicted (from the signed id); live "
            'accuracy = sum(rate(...{correct="true"})) / sum(rate(...))',
            labelnames=["label", "predicted", "correct", "model_version"],
        ),
        "feedback_duplicates": prometheus_client.Counter(
            name="textclf_feedback_duplicates",
            documentation="feedback items for an id this process already took feedback for "
            "(answered, not counted again)",
        ),
        "model_timeouts": prometheus_client.Counter(
            name="textclf_model_timeouts",
            documentation="model calls that ran longer than serve.model_timeout_ms",
        ),
    }


@functools.cache
def _request_metrics() -> RequestMetrics:
    """BentoML's HTTP metrics (turned off in BentoML) with route-only ``endpoint`` labels."""
    import prometheus_client  # in the worker, as in _metrics()

    return RequestMetrics(
        total=prometheus_client.Counter(
            name="bentoml_service_request_total",
            documentation="Total number of HTTP requests",
            labelnames=REQUEST_LABELS,
        ),
        duration=prometheus_client.Histogram(
            name="bentoml_service_request_duration_seconds",
            documentation="API HTTP request duration in seconds",
            labelnames=REQUEST_LABELS,
            buckets=DURATION_BUCKETS,
        ),
        in_progress=prometheus_client.Gauge(
            name="bentoml_service_request_in_progress",
            documentation="Total number of HTTP requests in progress now",
            labelnames=[name for name in REQUEST_LABELS if name != "http_response_code"],
            multiprocess_mode="livesum",
        ),
        last_request=prometheus_client.Gauge(
            name="bentoml_service_last_request_timestamp_seconds",
            documentation="Timestamp of the last received request",
            labelnames=["service_name", "service_version", "runner_name"],
            multiprocess_mode="mostrecent",
        ),
        unmatched=prometheus_client.Counter(
            name="textclf_unmatched_requests",
            documentation="requests to a path that is not one of the service's routes "
            "(answered 404 or 405; not labelled by path, so scanners add no series)",
        ),
    )


def _server_labels() -> dict[str, str]:
    context = bentoml.server_context
    return {
        "service_name": str(context.bento_name),
        "service_version": str(context.bento_version),
        "runner_name": str(context.service_name),
    }


def _exposition() -> tuple[bytes, str]:
    """``/metrics``: every worker's metrics (BentoML's multiprocess client)."""
    from bentoml._internal.configuration.containers import BentoMLContainer

    client = BentoMLContainer.metrics_client.get()
    return client.generate_latest(), client.CONTENT_TYPE_LATEST


class InputFreeValidationLog(logging.Filter):
    """Log a rejected request's validation errors by location and type, never its input.

    BentoML logs every 400 at ERROR with the traceback of pydantic's ValidationError, whose
    text holds the request's texts (``input_value``); this turns it into one WARNING line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite records carrying a ValidationError; pass the others unchanged."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            where = "; ".join(
                f"{'.'.join(str(part) for part in err['loc']) or 'body'}: {err['type']}"
                for err in exc.errors(include_url=False, include_context=False, include_input=False)
            )
            args = record.args if isinstance(record.args, tuple) else ()
            record.msg = "Rejected request on %s [%s]: %d validation error(s): %s (input not shown)"
            record.args = (*args[:2], exc.error_count(), where)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class ErrorsOnlyAccessLog(logging.Filter):
    """Pass BentoML's access-log lines of requests answered with a status of 400 or more.

    BentoML's access logger writes ``<client> (<request>) (status=<code>,...) <ms>ms``; a line
    whose status cannot be read is passed, so a change of that format logs more, never less.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a line with a status below 400; true for every other record."""
        args = record.args
        if isinstance(args, tuple) and len(args) == 4 and isinstance(args[2], str):
            status = args[2].split(",", 1)[0].removeprefix("status=")
            if status.isdigit():
                return int(status) >= 400
        return True


def _guard_logs(access_log: AccessLog) -> None:
    """Install :class:`InputFreeValidationLog` on the logger BentoML reports 400s with, and
    :class:`ErrorsOnlyAccessLog` (once) on its access logger when ``access_log`` is ``errors``."""
    target = logging.getLogger("bentoml._internal.server.http_app")
    if not any(isinstance(f, InputFreeValidationLog) for f in target.filters):
        target.addFilter(InputFreeValidationLog())
    access = logging.getLogger(ACCESS_LOGGER)
    for found in [f for f in access.filters if isinstance(f, ErrorsOnlyAccessLog)]:
        access.removeFilter(found)
    if access_log == "errors":
        access.addFilter(ErrorsOnlyAccessLog())


@functools.cache
def _predicted(label: str, model_version: str) -> Any:
    """The ``textclf_predictions`` series of a label and model version (looked up once: a
    lookup by label values costs more than the increment)."""
    return _metrics()["predictions"].labels(label=label, model_version=model_version)


def _record_batch(stats: BatchStats) -> None:
    metrics = _metrics()
    metrics["batch_texts"].observe(stats.texts)
    metrics["batch_requests"].observe(stats.requests)
    metrics["queue_seconds"].observe(stats.queued_s)


@bentoml.service(
    name="textclf",
    workers=_LIMITS.workers,
    traffic={"timeout": REQUEST_TIMEOUT_S},
    # Off: BentoML's middleware labels `endpoint` with the raw path; RouteMetrics exports the
    # same metrics per route, and serves /metrics (which this setting also turns off).
    metrics={"enabled": False},
    # Defaults: a BENTOML_CONFIG file overrides them (its tracing.exporter_type, sample_rate).
    **({} if _LIMITS.trace_requests else {"tracing": UNTRACED}),
    # "errors" keeps BentoML's access log on; ErrorsOnlyAccessLog drops the lines below 400.
    **({"logging": {"access": {"enabled": False}}} if _LIMITS.access_log == "off" else {}),
)
class TextClassifier:
    """Transformer text classifier served from its ONNX export."""

    def __init__(self) -> None:
        _guard_logs(_LIMITS.access_log)  # here, after BentoML configured logging in this worker
        settings = SETTINGS  # resolved once, at import: the request limits above come from it
        self.settings = settings
        self.model: OnnxClassifier | None = None
        model = OnnxClassifier(
            settings.model_dir,
            settings.variant,  # type: ignore[arg-type]
            threads=settings.params.threads,
            stop_spinning=True,  # between requests its threads would take the loop's cores
        )
        model.logits(["warm-up"])  # first call allocates; do it before /readyz says ready
        # A call while no other runs gets a session with a thread per core (the batcher picks).
        lone_threads = lone_call_threads(settings.params)
        self.lone_model: OnnxClassifier | None = None
        if (
            settings.params.parallel_calls > 1
            and lone_threads != settings.params.threads
            and model.providers == ["CPUExecutionProvider"]
        ):
            self.lone_model = OnnxClassifier(
                settings.model_dir,
                settings.variant,  # type: ignore[arg-type]
                threads=lone_threads,
                stop_spinning=True,
            )
            self.lone_model.logits(["warm-up"])
        self.traffic = (
            TrafficLog(
                settings.traffic_dir,
                settings.params.traffic_log,
                settings.traffic_text,
                settings.traffic_hash_key,
                on_drop=_metrics()["traffic_dropped"].inc,
                on_error=_metrics()["traffic_errors"].inc,
            )
            if settings.traffic_dir
            else None
        )
        self.feedback_log = (
            FeedbackLog(
                settings.traffic_dir,
                settings.params.traffic_log,
                on_drop=_metrics()["traffic_dropped"].inc,
                on_error=_metrics()["traffic_errors"].inc,
            )
            if settings.traffic_dir
            else None
        )
        self.recent_feedback = fb.RecentIds()
        lone = self.lone_model
        self.batcher: Batcher[Prediction] = Batcher(
            self._classify,
            lone_fn=None if lone is None else functools.partial(self._classify, model=lone),
            max_texts=settings.params.batching.max_texts,
            max_queue_s=settings.params.batching.max_queue_ms / 1000,
            parallel_calls=settings.params.parallel_calls,
            on_batch=_record_batch,
            on_shed=lambda _waited: _metrics()["shed"].labels(reason="queue").inc(),
            call_timeout_s=settings.params.model_timeout_ms / 1000,
            on_timeout=lambda _ran: _metrics()["model_timeouts"].inc(),
        )
        self.model = model
        _LIVE[:] = [self]  # DirectRoutes answers /predict and /feedback from now on
        logger.info(
            "loaded %s (%s, version %s, providers %s, %s); traffic log: %s (text: %s); "
            "prediction ids signed with %s",
            settings.model_dir,
            settings.variant,
            model.version,
            model.providers,
            f"{settings.params.parallel_calls} call(s) x {settings.params.threads or 'default'} "
            "thread(s)" + (f", a lone call {lone_threads} threads" if lone is not None else ""),
            self.traffic.path if self.traffic else "off",
            settings.traffic_text,
            f"{ids.ID_KEY_ENV}"
            if settings.prediction_id_key_shared
            else "a key of this process "
            f"only (set {ids.ID_KEY_ENV} from a Secret to verify ids on every replica)",
        )

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        """After the server stopped taking requests: stop the batcher, close the traffic file."""
        self.batcher.close()
        if self.traffic is not None:
            self.traffic.close()
        if self.feedback_log is not None:
            self.feedback_log.close()

    def __is_ready__(self) -> bool:
        """Ready once the model is loaded and warmed up."""
        return self.model is not None

    def __is_alive__(self) -> bool:
        """Alive unless every model call slot is held by a call past the timeout."""
        return self.batcher.alive

    @bentoml.api(input_spec=PredictRequest)
    async def predict(self, texts: list[str]) -> list[Prediction]:
        """Classify texts: per text, the label, every label's probability and the model version."""
        return cast("list[Prediction]", await self.answer_predict(texts))

    @bentoml.api(input_spec=FeedbackRequest)
    async def feedback(self, items: list[fb.FeedbackItem]) -> fb.FeedbackResult:
        """Take the true labels of earlier predictions, by the ids /predict returned."""
        return cast("fb.FeedbackResult", await self.answer_feedback(items))

    async def answer_predict(self, texts: list[str]) -> list[Prediction] | Response:
        """``/predict``'s answer: the predictions, or a 503 naming why and when to retry."""
        try:
            return await self.batcher.submit(texts)
        except OverloadedError as err:
            if isinstance(err, ModelTimeoutError):
                _metrics()["shed"].labels(reason="model_timeout").inc()
            # BentoML hides the message of a 5xx it raises itself; a returned Response is sent
            # as is, so the client learns why and when to retry.
            return JSONResponse(
                {"error": str(err)},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )

    async def answer_feedback(self, items: list[fb.FeedbackItem]) -> fb.FeedbackResult | Response:
        """``/feedback``'s answer: what was counted, or a 400 naming the item and the fix."""
        assert self.model is not None
        try:
            judged = fb.judge(items, self.settings.prediction_id_key, self.model.labels)
        except fb.FeedbackError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        fresh = [entry for entry in judged if self.recent_feedback.add(entry[0])]
        metrics = _metrics()
        counted = collections.Counter(entry[1:] for entry in fresh)
        for (label, predicted, version), count in counted.items():
            metrics["feedback"].labels(
                label=label,
                predicted=predicted,
                correct=str(label == predicted).lower(),
                model_version=version,
            ).inc(count)
        if len(fresh) < len(judged):
            metrics["feedback_duplicates"].inc(len(judged) - len(fresh))
        if self.feedback_log is not None and fresh:
            self.feedback_log.submit(fresh)
        return fb.FeedbackResult(accepted=len(fresh), duplicates=len(judged) - len(fresh))

    def _classify(self, texts: list[str], model: OnnxClassifier | None = None) -> list[Prediction]:
        """One model call over the merged texts of a batch (on the batcher's thread), on
        ``model`` (the lone-call session) or the service's model."""
        model = model or self.model
        assert model is not None
        probs = model.predict_proba(texts, self.settings.params.inference_batch_size)
        labels = model.labels
        out = []
        key = self.settings.prediction_id_key
        for row in probs:
            best = labels[int(row.argmax())]
            out.append(
                Prediction(
                    id=ids.mint(key, model.version, best),
                    label=best,
                    model_version=model.version,
                    probabilities={lab: float(p) for lab, p in zip(labels, row, strict=True)},
                )
            )
        for label, count in collections.Counter(pred.label for pred in out).items():
            _predicted(label, model.version).inc(count)
        if self.traffic is not None:  # queued, never blocking: written on the log's thread
            self.traffic.submit(
                [
                    (t, p.label, p.probabilities, p.model_version, p.id)
                    for t, p in zip(texts, out, strict=True)
                ]
            )
        return out


# mypy sees the decorated class; at runtime it is the bentoml.Service that wraps it.
_SERVICE = cast("bentoml.Service[TextClassifier]", TextClassifier)
_LIVE: list[TextClassifier] = []  # this worker's loaded service instance, once there is one
_ROUTE_OF = {
    name: "/"
    + "/".join(part for p in (_SERVICE.path_prefix, api.route) if (part := (p or "").strip("/")))
    for name, api in _SERVICE.apis.items()
}
_API_ROUTES = tuple(_ROUTE_OF.values())


def _trace_headers() -> dict[str, str]:
    """The span and trace id headers BentoML adds to a traced request's response."""
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml._internal.context import trace_context

    formats = BentoMLContainer.logging_formatting.get()
    headers = {}
    if trace_context.request_id is not None:
        headers["X-BentoML-Request-ID"] = format(trace_context.request_id, formats["span_id"])
    if BentoMLContainer.http.response.trace_id.get() and trace_context.trace_id is not None:
        headers["X-BentoML-Trace-ID"] = format(trace_context.trace_id, formats["trace_id"])
    return headers


async def _predict_body(body: BaseModel) -> list[Prediction] | Response:
    return await _LIVE[0].answer_predict(cast("Any", body).texts)


async def _feedback_body(body: BaseModel) -> fb.FeedbackResult | Response:
    return await _LIVE[0].answer_feedback(cast("Any", body).items)


# Added first = outermost of the service's own middleware (inside BentoML's timeout one).
_SERVICE.add_asgi_middleware(
    RouteMetrics,
    routes=(*_API_ROUTES, *SYSTEM_ROUTES),
    metrics=_request_metrics,
    labels=_server_labels,
    exposition=_exposition,
)
_SERVICE.add_asgi_middleware(
    RequestLimits,
    limits=Limits(_LIMITS.max_body_bytes, _LIMITS.max_concurrency, RETRY_AFTER_S),
    paths=_API_ROUTES,
    on_shed=lambda: _metrics()["shed"].labels(reason="concurrency").inc(),
)
_SERVICE.add_asgi_middleware(JsonOnly, paths=_API_ROUTES)
# Innermost: the APIs' POSTs answered here, validated with BentoML's own input models.
_SERVICE.add_asgi_middleware(
    DirectRoutes,
    routes={
        _ROUTE_OF["predict"]: JsonRoute(
            _SERVICE.apis["predict"].input_spec, _predict_body, TypeAdapter(list[Prediction])
        ),
        _ROUTE_OF["feedback"]: JsonRoute(
            _SERVICE.apis["feedback"].input_spec, _feedback_body, TypeAdapter(fb.FeedbackResult)
        ),
    },
    ready=lambda: bool(_LIVE),
    headers={"Server": f"BentoML Service/{_SERVICE.name}"},
    request_headers=_trace_headers if _LIMITS.trace_requests else None,
)
# BentoML derives a list output's media type from its JSON schema, rebuilt on every response
# (about 5% of the worker's time under load, by py-spy); it is always JSON here.
for _api in ("predict", "feedback"):
    _SERVICE.apis[_api].output_spec.media_type = "application/json"
