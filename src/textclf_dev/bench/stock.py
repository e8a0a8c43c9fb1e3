"""A stock BentoML service: what the framework costs per request with its defaults.

One synchronous ``@bentoml.api`` that returns the HTTP floor's canned prediction
(:mod:`textclf_dev.bench.floor`), under BentoML's default configuration: its router, input and
output validation, access log, tracing and metrics middleware, and the thread pool a sync API
runs in. Under the same load as the service, its CPU per request puts the service's own figure
between the bare HTTP stack (the floor) and what a plain BentoML service spends
(:func:`textclf_dev.bench.serving.overhead`).
"""

from __future__ import annotations

import json
from typing import Any

import bentoml

from textclf_dev.bench.floor import BODY

ANSWER: list[dict[str, Any]] = json.loads(BODY)


@bentoml.service(name="stock")
class Stock:
    """The canned prediction for any texts."""

    @bentoml.api
    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        """The same answer to every request (one prediction)."""
        return ANSWER
