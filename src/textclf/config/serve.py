"""``serve.yaml``: the service's settings (the only configuration the serving image ships)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from textclf.config.base import OnnxVariant, Section, read_file, validate

SERVE_FILE = "serve.yaml"  # at the repository root, and in the bento next to src/
# BentoML's request timeout for the service (504 past it); serve.yaml limits must fit inside.
REQUEST_TIMEOUT_S = 30
AccessLog = Literal["all", "errors", "off"]


def _access_log_word(value: Any) -> Any:
    """``true``/``false`` (the setting's old form; YAML also reads ``on``/``off`` so) as words."""
    if isinstance(value, bool):
        return "all" if value else "off"
    return value


class BatchingParams(Section):
    """Request batching: each model call merges the requests that queued while the last ran."""

    max_texts: int = Field(
        64,
        ge=1,
        le=4096,
        description="most texts merged into one model call (whole requests only: a larger "
        "request runs alone)",
    )
    max_queue_ms: int = Field(
        1000,
        ge=10,
        le=600_000,
        description="a request that waited longer than this for the model is answered 503 "
        "(load shedding), in ms",
    )


class TrafficLogParams(Section):
    """Recorded traffic (JSON lines) for drift monitoring: redaction, rotation, retention."""

    text: Literal["keep", "hash", "drop"] = Field(
        "keep",
        description="what a record keeps of its input text: 'keep' (the text), 'hash' "
        "(text_hmac: HMAC-SHA256 keyed by the TEXTCLF_TRAFFIC_HASH_KEY environment variable) "
        "or 'drop' (nothing). The drift check works in every mode (on the recorded "
        "features), but replaying traffic through a new model and retraining from traffic "
        "need 'keep'. The TEXTCLF_TRAFFIC_TEXT environment variable overrides it",
    )
    max_bytes: int = Field(
        50_000_000,
        ge=1024,
        description="rotate a traffic file when it would exceed this size, in bytes (>= 1024)",
    )
    backups: int = Field(
        5,
        ge=0,
        le=1000,
        description="rotated files kept per process (<name>.jsonl.1 .. .N); "
        "0 keeps only the current file",
    )
    max_age_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="traffic files (any pod's) last written more than this many days ago are "
        "deleted, at service start and after each rotation (1..3650)",
    )
    max_total_bytes: int = Field(
        8_000_000_000,
        ge=1024,
        description="all traffic and feedback files in the directory (every pod's, current and "
        "rotated) are kept under this size by deleting the oldest, in bytes; keep it under the "
        "volume's size (deploy/base/pvc-traffic.yaml: 10 GiB) and at least "
        "max_bytes x (backups + 1), better twice that (feedback files rotate the same way)",
    )
    queue_size: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="records waiting for the writer thread, at most (1..1000000); a model "
        "call whose records do not fit is not recorded and counted as dropped",
    )

    @model_validator(mode="after")
    def _total_holds_one_process(self) -> TrafficLogParams:
        own = self.max_bytes * (self.backups + 1)
        if self.max_total_bytes < own:
            raise ValueError(
                f"max_total_bytes = {self.max_total_bytes} is less than one process's files "
                f"(max_bytes x (backups + 1) = {own}), so retention would delete the file "
                "being written. Fix: raise max_total_bytes, or lower max_bytes or backups"
            )
        return self


class ServeParams(Section):
    """``serve.yaml``: the service's model variant, request limits, batching and traffic log.

    The only configuration the serving image ships (no pipeline stage reads it).
    """

    variant: OnnxVariant = Field(
        "int8",
        description="ONNX graph served: 'int8' (CPU images) or 'fp32' (GPU images); the "
        "TEXTCLF_ONNX_VARIANT environment variable overrides it",
    )
    max_batch_size: int = Field(
        64, ge=1, le=4096, description="most texts accepted in one /predict request (1..4096)"
    )
    max_text_chars: int = Field(
        2000, ge=1, le=1_000_000, description="longest text accepted, in characters"
    )
    inference_batch_size: int = Field(
        32,
        ge=1,
        le=4096,
        description="texts per ONNX Runtime call inside a merged batch (length-sorted)",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="service worker processes, each with its own model session and batcher "
        "(1..64); on CPU, one per core the pod may use",
    )
    parallel_calls: int = Field(
        2,
        ge=1,
        le=64,
        description="model calls a worker runs at once, each on its own thread (1..64)",
    )
    threads: int = Field(
        1,
        ge=0,
        description="ONNX Runtime intra-op threads per model call; 0 keeps its default (one per "
        "core of the node, not of the pod's CPU limit)",
    )
    lone_call_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="ONNX Runtime threads of a model call that starts while no other call of "
        "the worker runs (a lone request), on a second CPU session of the model; 0 = the cores "
        "this process may use (CPU affinity and cgroup quota) divided by workers; a value equal "
        "to threads turns the second session off",
    )
    access_log: Annotated[AccessLog, BeforeValidator(_access_log_word)] = Field(
        "errors",
        description="BentoML's access log line (client, method, path, status, time): 'errors' "
        "for requests answered with a status of 400 or more, 'all' for every request, 'off' "
        "for none (true and false mean all and off). A line costs about 0.1 ms of CPU; the "
        "per-route Prometheus metrics count every request, and the traffic log (when on) "
        "records every prediction",
    )
    trace_requests: bool = Field(
        False,
        description="wrap each request in an OpenTelemetry span (BentoML's tracing). BentoML "
        "makes the span even when no exporter is configured; false skips it (about half of "
        "the service's own CPU per request); set true with a tracing exporter",
    )
    max_body_bytes: int = Field(
        2_097_152,
        ge=1024,
        le=1_073_741_824,
        description="largest /predict body accepted, in bytes; larger ones get 413 before "
        "they are read. Must hold max_batch_size texts of max_text_chars characters as UTF-8 "
        "(up to 4 bytes a character; JSON \\u escapes take 6 to 12)",
    )
    max_concurrency: int = Field(
        64,
        ge=1,
        le=100_000,
        description="/predict requests a worker holds at once (queued or running); more get "
        "503 with Retry-After before their body is read",
    )
    model_timeout_ms: int = Field(
        10_000,
        ge=100,
        le=600_000,
        description="a model call running longer fails its requests with 503; while every "
        "call slot of a worker is held by such a call, /livez fails (the container restarts)",
    )
    batching: BatchingParams = BatchingParams()
    traffic_log: TrafficLogParams = TrafficLogParams()

    @model_validator(mode="after")
    def _limits_fit(self) -> ServeParams:
        smallest = 4 * self.max_batch_size * (self.max_text_chars + 4)
        if self.max_body_bytes < smallest:
            raise ValueError(
                f"max_body_bytes = {self.max_body_bytes} cannot hold max_batch_size = "
                f"{self.max_batch_size} texts of max_text_chars = {self.max_text_chars} "
                f"characters (up to 4 bytes each as UTF-8); raise it to at least {smallest} "
                "or lower those limits"
            )
        waited_ms = self.model_timeout_ms + self.batching.max_queue_ms
        if waited_ms >= REQUEST_TIMEOUT_S * 1000:
            raise ValueError(
                f"model_timeout_ms + batching.max_queue_ms = {waited_ms} ms reaches the "
                f"service's {REQUEST_TIMEOUT_S} s request timeout (a 504 without a reason); "
                "lower either"
            )
        return self


def load_serve(path: Path | str = SERVE_FILE) -> ServeParams:
    """Load and validate the service's settings file (``serve.yaml``)."""
    return validate(ServeParams, read_file(path, "the service"), str(path), "serve keys")
