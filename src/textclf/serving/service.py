"""The BentoML service: ONNX Runtime inference with request batching, validation, traffic log.

``POST /predict`` takes ``{"texts": [...]}`` and returns one prediction per text. Concurrent
requests are merged into one model call by :class:`textclf.serving.batching.Batcher`
(``serve.batching``): a call takes every request that queued while the previous one ran, and an
idle service runs a request at once. BentoML serves ``/healthz``, ``/livez``, ``/readyz`` (ready
once the model is loaded and warmed up: ``__is_ready__``) and Prometheus ``/metrics``.
``serve.workers`` processes each load the model and batch their own requests.

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
from starlette.responses import JSONResponse

from textclf.inference import OnnxClassifier
from textclf.serving.batching import Batcher, BatchStats, OverloadedError
from textclf.serving.middleware import JsonOnly
from textclf.serving.schemas import Prediction, request_model
from textclf.serving.settings import ServeSettings, load_settings
from textclf.serving.traffic import TrafficLog, record

logger = logging.getLogger("textclf.serving")

SETTINGS: ServeSettings = load_settings()
_LIMITS = SETTINGS.params
PredictRequest = request_model(_LIMITS.max_batch_size, _LIMITS.max_text_chars)
RETRY_AFTER_S = 1  # Retry-After of a 503 from load shedding
# BentoML's OpenTelemetry middleware skips the URLs its ``tracing.excluded_urls`` regexes match;
# this one matches every URL. Without an exporter (BentoML's default) the span is never recorded,
# yet making it cost about 0.5 ms of CPU per request, half of the service's own work per request
# (in-process measurement, model faked). Also gone with it: the ``X-BentoML-Request-ID`` header
# and the trace ids of the access log, which name that span.
UNTRACED = {"excluded_urls": ["."]}


@functools.cache
def _metrics() -> dict[str, Any]:
    """Service-specific Prometheus metrics (created once per process, on first use)."""
    return {
        "predictions": bentoml.metrics.Counter(
            name="textclf_predictions",
            documentation="texts classified, by predicted label",
            labelnames=["label", "model_version"],
        ),
        "traffic_errors": bentoml.metrics.Counter(
            name="textclf_traffic_log_errors",
            documentation="batches whose traffic records could not be written",
        ),
        "batch_texts": bentoml.metrics.Histogram(
            name="textclf_batch_texts",
            documentation="texts per model call (requests merged by the batcher)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
        ),
        "batch_requests": bentoml.metrics.Histogram(
            name="textclf_batch_requests",
            documentation="requests merged into one model call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        ),
        "queue_seconds": bentoml.metrics.Histogram(
            name="textclf_queue_seconds",
            documentation="how long the oldest request of a model call waited for the model",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        ),
        "shed": bentoml.metrics.Counter(
            name="textclf_shed_requests",
            documentation="requests answered 503 because they waited longer than "
            "serve.batching.max_queue_ms",
        ),
    }


def _record_batch(stats: BatchStats) -> None:
    metrics = _metrics()
    metrics["batch_texts"].observe(stats.texts)
    metrics["batch_requests"].observe(stats.requests)
    metrics["queue_seconds"].observe(stats.queued_s)


@bentoml.service(
    name="textclf",
    workers=_LIMITS.workers,
    traffic={"timeout": 30},
    # Defaults: a BENTOML_CONFIG file overrides them (its tracing.exporter_type, sample_rate).
    **({} if _LIMITS.trace_requests else {"tracing": UNTRACED}),
)
class TextClassifier:
    """Transformer text classifier served from its ONNX export."""

    def __init__(self) -> None:
        settings = SETTINGS  # resolved once, at import: the request limits above come from it
        self.settings = settings
        self.model: OnnxClassifier | None = None
        model = OnnxClassifier(
            settings.model_dir,
            settings.variant,  # type: ignore[arg-type]
            threads=settings.params.threads,
        )
        model.logits(["warm-up"])  # first call allocates; do it before /readyz says ready
        self.traffic = (
            TrafficLog(
                settings.traffic_dir,
                settings.params.traffic_log.max_bytes,
                settings.params.traffic_log.backups,
            )
            if settings.traffic_dir
            else None
        )
        self.batcher: Batcher[Prediction] = Batcher(
            self._classify,
            max_texts=settings.params.batching.max_texts,
            max_queue_s=settings.params.batching.max_queue_ms / 1000,
            parallel_calls=settings.params.parallel_calls,
            on_batch=_record_batch,
            on_shed=lambda _waited: _metrics()["shed"].inc(),
        )
        self.model = model
        logger.info(
            "loaded %s (%s, version %s, providers %s); traffic log: %s",
            settings.model_dir,
            settings.variant,
            model.version,
            model.providers,
            self.traffic.path if self.traffic else "off",
        )

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        """After the server stopped taking requests: stop the batcher, close the traffic file."""
        self.batcher.close()
        if self.traffic is not None:
            self.traffic.close()

    def __is_ready__(self) -> bool:
        """Ready once the model is loaded and warmed up."""
        return self.model is not None

    @bentoml.api(input_spec=PredictRequest)
    async def predict(self, texts: list[str]) -> list[Prediction]:
        """Classify texts: per text, the label, every label's probability and the model version."""
        try:
            return await self.batcher.submit(texts)
        except OverloadedError as err:
            # BentoML hides the message of a 5xx it raises itself; a returned Response is sent
            # as is, so the client learns why and when to retry.
            response: Any = JSONResponse(
                {"error": str(err)},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
            return cast("list[Prediction]", response)

    def _classify(self, texts: list[str]) -> list[Prediction]:
        """One model call over the merged texts of a batch (on the batcher's thread)."""
        assert self.model is not None
        model = self.model
        probs = model.predict_proba(texts, self.settings.params.inference_batch_size)
        labels = model.labels
        out = []
        for row in probs:
            best = labels[int(row.argmax())]
            out.append(
                Prediction(
                    label=best,
                    model_version=model.version,
                    probabilities={lab: float(p) for lab, p in zip(labels, row, strict=True)},
                )
            )
        metrics = _metrics()
        for label, count in collections.Counter(pred.label for pred in out).items():
            metrics["predictions"].labels(label=label, model_version=model.version).inc(count)
        if self.traffic is not None:
            written = self.traffic.write(
                record(t, p.label, p.probabilities, p.model_version)
                for t, p in zip(texts, out, strict=True)
            )
            if not written:
                metrics["traffic_errors"].inc()
        return out


# mypy sees the decorated class; at runtime it is the bentoml.Service that wraps it.
_SERVICE = cast("bentoml.Service[TextClassifier]", TextClassifier)
_SERVICE.add_asgi_middleware(JsonOnly, paths=("/predict",))
# BentoML derives a list output's media type from its JSON schema, rebuilt on every response
# (about 5% of the worker's time under load, by py-spy); it is always JSON here.
_SERVICE.apis["predict"].output_spec.media_type = "application/json"
