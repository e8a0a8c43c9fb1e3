"""Fixtures of the service tests: the tiny export, a params file with small limits, the service.

The service module reads its settings when imported, so the session fixture sets the
``TEXTCLF_*`` variables first; ``PROMETHEUS_MULTIPROC_DIR`` is what ``bentoml serve`` would set.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.exported import TinyExport, exported

__all__ = ["exported"]

# Small limits so every rejection is cheap to provoke; a small traffic file so it rotates.
SERVE = {
    "variant": "fp32",
    "max_batch_size": 8,
    "max_text_chars": 200,
    "threads": 1,
    "inference_batch_size": 4,
    "max_body_bytes": 65536,  # 8 texts of 200 characters need at least 6528 (4 bytes each)
    "max_concurrency": 48,  # above the 16 clients of the load test
    "model_timeout_ms": 3000,  # the hanging-model test waits this long twice
    "batching": {"max_texts": 16, "max_queue_ms": 20000},
    "traffic_log": {"max_bytes": 4096, "backups": 2},
}

# The Secret every replica would share (tests verify the ids the service returns with it).
PREDICTION_ID_KEY = "test-only-prediction-id-key-0123456789"


@pytest.fixture(scope="session")
def serve_env(tmp_path_factory: pytest.TempPathFactory, exported: TinyExport) -> dict[str, str]:
    """Environment of a service on the tiny export: model, params (small limits), traffic dir."""
    tmp = tmp_path_factory.mktemp("serve")
    serve_file = tmp / "serve.yaml"
    serve_file.write_text(yaml.safe_dump(SERVE), encoding="utf-8")
    (tmp / "prometheus").mkdir()
    return {
        "TEXTCLF_MODEL_DIR": str(exported.onnx_dir),
        "TEXTCLF_SERVE_FILE": str(serve_file),
        "TEXTCLF_TRAFFIC_DIR": str(tmp / "traffic"),
        "TEXTCLF_ONNX_VARIANT": "fp32",
        "TEXTCLF_PREDICTION_ID_KEY": PREDICTION_ID_KEY,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus"),
    }


@pytest.fixture(scope="session")
def service_module(serve_env: dict[str, str]) -> Iterator[ModuleType]:
    """``textclf.serving.service`` imported with :func:`serve_env` in the environment."""
    values = sys.modules.get("prometheus_client.values")
    if values is not None and values.ValueClass is values.MutexValue:
        pytest.fail(
            "prometheus_client was imported in this test process before PROMETHEUS_MULTIPROC_DIR "
            "was set, so its metrics never reach the service's /metrics. Fix: run the test that "
            "imports it in a subprocess (see tests/monitoring/test_drift_job.py)."
        )
    with pytest.MonkeyPatch.context() as mp:
        for key, value in serve_env.items():
            mp.setenv(key, value)
        name = "textclf.serving.service"
        module = (
            importlib.reload(sys.modules[name])
            if name in sys.modules
            else importlib.import_module(name)
        )
        yield module


@pytest.fixture(scope="session")
def client(service_module: ModuleType) -> Iterator[Any]:
    """A Starlette test client on the service's ASGI app (lifespan run: the model is loaded)."""
    from starlette.testclient import TestClient

    with TestClient(service_module.TextClassifier.to_asgi()) as test_client:
        yield test_client
