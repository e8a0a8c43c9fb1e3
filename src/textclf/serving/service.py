"""The BentoML service: ONNX Runtime inference with adaptive batching, validation, traffic log.

``POST /predict`` takes ``{"texts": [...]}`` and returns one prediction per text. The API is
batchable: BentoML merges concurrent requests into one model call (``serve.adaptive_batching``)
and splits the results back. BentoML also serves ``/healthz``, ``/livez``, ``/readyz`` (ready once
the model is loaded and warmed up: ``__is_ready__``) and Prometheus ``/metrics``.

Configuration (read when this module is imported; see :mod:`textclf.serving.settings`):
``TEXTCLF_MODEL_DIR``, ``TEXTCLF_ONNX_VARIANT``, ``TEXTCLF_TRAFFIC_DIR``, ``TEXTCLF_PARAMS``, and
the ``serve`` section of ``params.yaml``. Imports no torch, Lightning or transformers.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, cast

import bentoml

from textclf.inference import OnnxClassifier
from textclf.serving.middleware import JsonOnly
from textclf.serving.schemas import Prediction, request_model
from textclf.serving.settings import ServeSettings, load_settings
from textclf.serving.traffic import TrafficLog, record

logger = logging.getLogger("textclf.serving")

SETTINGS: ServeSettings = load_settings()
_LIMITS = SETTINGS.params
PredictRequest = request_model(_LIMITS.max_batch_size, _LIMITS.max_text_chars)


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
    }


@bentoml.service(name="textclf", traffic={"timeout": 30})
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
        self.model = model
        logger.info(
            "loaded %s (%s, version %s, providers %s); traffic log: %s",
            settings.model_dir,
            settings.variant,
            model.version,
            model.providers,
            self.traffic.path if self.traffic else "off",
        )

    def __is_ready__(self) -> bool:
        """Ready once the model is loaded and warmed up."""
        return self.model is not None

    @bentoml.api(
        batchable=True,
        input_spec=PredictRequest,
        max_batch_size=_LIMITS.adaptive_batching.max_batch_size,
        max_latency_ms=_LIMITS.adaptive_batching.max_latency_ms,
    )
    def predict(self, texts: list[str]) -> list[Prediction]:
        """Classify texts: per text, the label, every label's probability and the model version."""
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
        for pred in out:
            metrics["predictions"].labels(label=pred.label, model_version=model.version).inc()
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
