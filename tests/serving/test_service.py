"""The service through its ASGI app: predictions, every rejected input, health, metrics, schema."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import yaml

from tests.exported import TinyExport
from tests.serving.conftest import PREDICTION_ID_KEY, SERVE
from textclf.inference import STOP_SPINNING, OnnxClassifier
from textclf.serving import ids
from textclf.serving.batching import Batcher, OverloadedError
from textclf.serving.schemas import EXAMPLE

MAX_TEXTS, MAX_CHARS = SERVE["max_batch_size"], SERVE["max_text_chars"]
TEXTS = [
    "great love excellent",
    "the flight was delayed again and the service was awful",
    "meeting notes for monday",
    "ok",
]


@pytest.fixture(scope="module")
def direct(exported: TinyExport) -> OnnxClassifier:
    """The same fp32 graph, called in process."""
    return OnnxClassifier(exported.onnx_dir, "fp32", threads=1)


def _predict(client: Any, body: Any) -> Any:
    """POST ``body`` as JSON (``None`` is sent as the JSON ``null``, not as an empty body)."""
    return client.post(
        "/predict", content=json.dumps(body), headers={"content-type": "application/json"}
    )


def test_single_text(client: Any, direct: OnnxClassifier) -> None:
    resp = _predict(client, {"texts": ["I love this phone"]})
    assert resp.status_code == 200, resp.text
    (pred,) = resp.json()
    assert set(pred) == {"id", "label", "probabilities", "model_version"}
    assert list(pred["probabilities"]) == direct.labels
    assert sum(pred["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert pred["label"] == max(pred["probabilities"], key=pred["probabilities"].get)
    assert pred["model_version"] == direct.version
    # The id is signed with the shared key and names what was predicted, by which model.
    assert ids.verify(PREDICTION_ID_KEY.encode(), pred["id"]) == (direct.version, pred["label"])


def test_every_text_gets_its_own_id_even_the_same_text(client: Any) -> None:
    resp = _predict(client, {"texts": ["same text", "same text", "other"]})
    assert resp.status_code == 200, resp.text
    first = [p["id"] for p in resp.json()]
    again = [p["id"] for p in _predict(client, {"texts": ["same text"]}).json()]
    assert len(set(first + again)) == 4
    with pytest.raises(ids.InvalidIdError):  # the test's key is what made them: not vacuous
        ids.verify(b"another key of sixteen bytes or more", first[0])


def test_batch_matches_direct_calls_in_input_order(client: Any, direct: OnnxClassifier) -> None:
    resp = _predict(client, {"texts": TEXTS})
    assert resp.status_code == 200, resp.text
    served = np.array([[p["probabilities"][lab] for lab in direct.labels] for p in resp.json()])
    expected = direct.predict_proba(TEXTS)
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert [p["label"] for p in resp.json()] == [direct.labels[i] for i in expected.argmax(1)]


def test_the_largest_allowed_request_is_accepted(client: Any) -> None:
    resp = _predict(client, {"texts": ["x" * MAX_CHARS] * MAX_TEXTS})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()) == MAX_TEXTS


INVALID: list[tuple[str, Any, list[str]]] = [
    ("not an object", ["a text"], ["body must be a JSON object, got array", "Fix:"]),
    ("null body", None, ["body must be a JSON object, got null", "Fix:"]),
    ("number body", 3, ["body must be a JSON object, got number", "Fix:"]),
    ("missing texts", {}, ["has no 'texts' key", "Fix:"]),
    ("misspelt key", {"text": ["a"]}, ["unknown key(s) ['text']", "Fix:"]),
    ("extra key", {"texts": ["a"], "lang": "en"}, ["unknown key(s) ['lang']", "Fix:"]),
    ("texts is a string", {"texts": "a text"}, ["JSON array of strings, got string", "Fix:"]),
    ("texts is null", {"texts": None}, ["got null", "Fix:"]),
    ("texts is an object", {"texts": {"a": 1}}, ["got object", "Fix:"]),
    ("empty list", {"texts": []}, ["'texts' is empty", "Fix:"]),
    ("number item", {"texts": ["fine", 3]}, ["texts[1] must be a string, got number", "Fix:"]),
    ("null item", {"texts": [None]}, ["texts[0] must be a string, got null", "Fix:"]),
    ("boolean item", {"texts": ["a", "b", True]}, ["texts[2] must be a string, got boolean"]),
    (
        "nested list item",
        {"texts": ["ok", ["a"]]},
        ["texts[1] must be a string, got array", "Fix:"],
    ),
    ("empty text", {"texts": ["ok", ""]}, ["texts[1] is empty or only whitespace", "Fix:"]),
    ("whitespace text", {"texts": [" \t\n "]}, ["texts[0] is empty or only whitespace", "Fix:"]),
    (
        "too many texts",
        {"texts": ["a"] * (MAX_TEXTS + 1)},
        [f"has {MAX_TEXTS + 1} items; at most {MAX_TEXTS}", "Fix: split"],
    ),
    (
        "too long text",
        {"texts": ["ok", "ok", "y" * (MAX_CHARS + 1)]},
        [f"texts[2] has {MAX_CHARS + 1} characters; at most {MAX_CHARS}", "Fix: shorten"],
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [(b, e) for _, b, e in INVALID], ids=[name for name, _, _ in INVALID]
)
def test_invalid_input_is_a_4xx_naming_the_item_and_the_fix(
    client: Any, body: Any, expected: list[str]
) -> None:
    resp = _predict(client, body)
    assert resp.status_code == 400, resp.text
    messages = " ".join(d["msg"] for d in resp.json()["detail"])
    for fragment in expected:
        assert fragment in messages


@pytest.mark.parametrize(
    ("content", "content_type", "status", "fragment"),
    [
        (b"{not json", "application/json", 400, "Invalid JSON"),
        (b"", "application/json", 400, "has no 'texts' key (or is empty). Fix:"),
        (b'{"texts": ["\\ud800 lone surrogate"]}', "application/json", 400, "Invalid JSON"),
        (b'{"texts": ["caf\xe9"]}', "application/json", 400, "Invalid JSON"),  # Latin-1, not UTF-8
        (b"[" * 5000, "application/json", 400, "Invalid JSON"),
        (b'{"texts": ["a"]}', "text/plain", 415, "unsupported Content-Type 'text/plain'. Fix:"),
        (b"texts=a", "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
        (b"--x\r\n", "multipart/form-data", 415, "unsupported Content-Type 'multipart/form-data'"),
        (b"\x80\x04N.", "application/vnd.bentoml+pickle", 415, "unsupported Content-Type"),
    ],
)
def test_malformed_bodies_and_other_media_types_are_4xx(
    client: Any, content: bytes, content_type: str, status: int, fragment: str
) -> None:
    resp = client.post("/predict", content=content, headers={"content-type": content_type})
    assert resp.status_code == status, resp.text
    assert fragment in resp.text


def test_a_body_without_content_type_is_read_as_json(client: Any) -> None:
    resp = client.post("/predict", content=b'{"texts": ["no header"]}')
    assert resp.status_code == 200, resp.text
    assert len(resp.json()) == 1


def test_an_overloaded_service_answers_503_with_the_fix(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request shed by the batcher (queued past serve.batching.max_queue_ms) is a 503."""

    async def shed(self: Batcher[Any], texts: list[str]) -> list[Any]:
        raise OverloadedError("the service is overloaded: ... Fix: retry with backoff")

    monkeypatch.setattr(Batcher, "submit", shed)
    resp = _predict(client, {"texts": ["too late"]})
    assert resp.status_code == 503, resp.text
    assert resp.json() == {"error": "the service is overloaded: ... Fix: retry with backoff"}
    assert resp.headers["retry-after"] == "1"


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
def test_health_endpoints(client: Any, path: str) -> None:
    assert client.get(path).status_code == 200


def test_readyz_needs_the_model(client: Any, service_module: ModuleType) -> None:
    instance = service_module.TextClassifier.inner.__new__(service_module.TextClassifier.inner)
    instance.model = None
    assert instance.__is_ready__() is False
    assert client.get("/readyz").status_code == 200


MISSING_MODEL = """
import sys
from starlette.testclient import TestClient
from textclf.errors import ArtifactError
from textclf.serving.service import TextClassifier
try:
    with TestClient(TextClassifier.to_asgi()):
        pass
except ArtifactError as err:
    print(err)
    sys.exit(3)
"""


def test_a_missing_model_stops_startup(serve_env: dict[str, str], tmp_path: Path) -> None:
    # A fresh process: BentoML registers its HTTP metrics once per process and app.
    env = {
        **os.environ,
        **serve_env,
        "TEXTCLF_MODEL_DIR": str(tmp_path / "nothing-here"),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", MISSING_MODEL],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr[-3000:]
    assert "nothing-here lacks" in result.stdout
    assert "not an ONNX export. Fix:" in result.stdout


TRACED = """
import json, sys
from starlette.testclient import TestClient
from textclf.serving.service import TextClassifier
with TestClient(TextClassifier.to_asgi()) as client:
    resp = client.post("/predict", json={"texts": ["traced?"]})
    print(json.dumps({"status": resp.status_code, "request_id": resp.headers.get(sys.argv[1])}))
"""
REQUEST_ID = "X-BentoML-Request-ID"  # BentoML's header: the id of the request's span


def test_requests_get_a_span_only_with_trace_requests(
    client: Any, serve_env: dict[str, str], tmp_path: Path
) -> None:
    untraced = _predict(client, {"texts": ["untraced"]})
    assert untraced.status_code == 200
    assert REQUEST_ID not in untraced.headers  # serve.trace_requests: false (the default)

    params = tmp_path / "serve.yaml"
    params.write_text(yaml.safe_dump({**SERVE, "trace_requests": True}), "utf-8")
    env = {
        **os.environ,
        **serve_env,
        "TEXTCLF_SERVE_FILE": str(params),
        "TEXTCLF_TRAFFIC_DIR": "",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", TRACED, REQUEST_ID],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    traced = json.loads(result.stdout.strip().splitlines()[-1])
    assert traced["status"] == 200
    assert traced["request_id"] and int(traced["request_id"], 16) != 0


def test_metrics_count_requests_by_endpoint_and_status(client: Any) -> None:
    _predict(client, {"texts": ["metrics please"]})
    _predict(client, {"texts": []})
    text = client.get("/metrics").text
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert any(
        ln.startswith("bentoml_service_request_total{")
        and 'endpoint="/predict"' in ln
        and 'http_response_code="200"' in ln
        for ln in lines
    )
    assert any(
        ln.startswith("bentoml_service_request_total{")
        and 'endpoint="/predict"' in ln
        and 'http_response_code="400"' in ln
        for ln in lines
    )
    assert any(ln.startswith("bentoml_service_request_duration_seconds_bucket{") for ln in lines)
    assert any(ln.startswith("textclf_predictions_total{") for ln in lines)


def test_openapi_documents_the_limits(client: Any) -> None:
    spec = client.get("/docs.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    texts = body["schema"]["properties"]["texts"]
    assert (texts["minItems"], texts["maxItems"]) == (1, MAX_TEXTS)
    assert texts["items"]["maxLength"] == MAX_CHARS
    assert body["schema"]["additionalProperties"] is False
    assert body["schema"]["example"] == EXAMPLE  # what the Swagger UI pre-fills


def _metric_lines(client: Any, prefix: str) -> list[str]:
    return [ln for ln in client.get("/metrics").text.splitlines() if ln.startswith(prefix)]


def _unmatched(client: Any) -> float:
    (line,) = _metric_lines(client, "textclf_unmatched_requests_total ")
    return float(line.split()[-1])


def test_unknown_paths_create_no_metric_series(client: Any) -> None:
    _predict(client, {"texts": ["a known route first"]})
    before_series = {ln.rsplit(" ", 1)[0] for ln in _metric_lines(client, "bentoml_service_")}
    before = _unmatched(client)
    for i in range(20):
        assert client.get(f"/nope/{i}").status_code == 404
        assert client.post(f"/predict/{i}", json={"texts": ["x"]}).status_code == 404
    after_series = {ln.rsplit(" ", 1)[0] for ln in _metric_lines(client, "bentoml_service_")}
    assert not [s for s in after_series - before_series if "/nope" in s or "/predict/" in s]
    assert {s for s in after_series if "endpoint=" in s} <= {
        s for s in before_series if "endpoint=" in s
    } | {s for s in after_series if 'endpoint="/predict"' in s}
    assert _unmatched(client) - before == 40  # counted, under one label-free series


def test_a_hanging_model_call_is_503_and_fails_livez_until_it_returns(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both call slots (serve.parallel_calls: 2) hang past serve.model_timeout_ms (3 s)."""
    go = threading.Event()
    real = OnnxClassifier.predict_proba

    def hanging(self: OnnxClassifier, texts: list[str], *args: Any, **kwargs: Any) -> Any:
        if any(t.startswith("HANG") for t in texts):
            assert go.wait(timeout=60), "the test never released the model"
        return real(self, texts, *args, **kwargs)

    monkeypatch.setattr(OnnxClassifier, "predict_proba", hanging)
    try:
        first = _predict(client, {"texts": ["HANG one"]})
        assert client.get("/livez").status_code == 200  # one slot of two still serves
        second = _predict(client, {"texts": ["HANG two"]})
        livez = client.get("/livez")
    finally:
        go.set()
    for resp in (first, second):
        assert resp.status_code == 503, resp.text
        assert resp.headers["retry-after"] == "1"
        assert "serve.model_timeout_ms (3000 ms)" in resp.json()["error"]
    assert livez.status_code == 503
    for _ in range(100):  # the hung threads return once released
        if client.get("/livez").status_code == 200:
            break
        time.sleep(0.05)
    assert client.get("/livez").status_code == 200
    assert _predict(client, {"texts": ["back to normal"]}).status_code == 200
    timeouts = _metric_lines(client, "textclf_model_timeouts_total")
    assert timeouts and float(timeouts[0].split()[-1]) >= 2
    shed = [
        ln for ln in _metric_lines(client, "textclf_shed_requests_total") if "model_timeout" in ln
    ]
    assert shed and float(shed[0].split()[-1]) >= 2


@pytest.mark.parametrize(
    "body",
    [
        b'{"texts": ["MARKER-123 is not closed',  # malformed JSON: pydantic keeps the raw body
        json.dumps({"texts": ["MARKER-123" + "z" * MAX_CHARS]}).encode(),
        json.dumps({"texts": ["fine"], "MARKER-123": 1}).encode(),
    ],
)
def test_a_rejected_request_is_logged_without_its_input(
    client: Any, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    with caplog.at_level(logging.DEBUG):
        resp = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 400
    logged = "\n".join(f"{r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "WARNING Rejected request on /predict [POST]: 1 validation error(s)" in logged
    assert "MARKER-123" not in logged and "input_value" not in logged


def test_without_the_filter_bentoml_would_log_the_input(
    client: Any, caplog: pytest.LogCaptureFixture, service_module: ModuleType
) -> None:
    """Negative control of the test above: BentoML's own log line carries the text."""
    target = logging.getLogger("bentoml._internal.server.http_app")
    (guard,) = [f for f in target.filters if isinstance(f, service_module.InputFreeValidationLog)]
    target.removeFilter(guard)
    try:
        with caplog.at_level(logging.DEBUG):
            _predict(client, {"texts": ["MARKER-456" + "z" * MAX_CHARS]})
    finally:
        target.addFilter(guard)
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "MARKER-456" in logged


def _access_lines(caplog: pytest.LogCaptureFixture, service_module: ModuleType) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == service_module.ACCESS_LOGGER]


def test_the_access_log_keeps_only_the_requests_answered_with_an_error(
    client: Any, caplog: pytest.LogCaptureFixture, service_module: ModuleType
) -> None:
    """``access_log: errors`` (the default): BentoML's line for a 400 and a 404, none for a 200."""
    with caplog.at_level(logging.INFO, logger=service_module.ACCESS_LOGGER):
        assert _predict(client, {"texts": ["fine"]}).status_code == 200
        assert _predict(client, {"texts": []}).status_code == 400
        assert client.get("/no-such-route").status_code == 404
    lines = _access_lines(caplog, service_module)
    assert len(lines) == 2, lines
    assert "path=/predict" in lines[0] and "status=400" in lines[0], lines
    assert "path=/no-such-route" in lines[1] and "status=404" in lines[1], lines


def test_without_the_errors_filter_every_request_is_in_the_access_log(
    client: Any, caplog: pytest.LogCaptureFixture, service_module: ModuleType
) -> None:
    """Negative control of the test above: BentoML writes a line for the 200 too."""
    access = logging.getLogger(service_module.ACCESS_LOGGER)
    (only,) = [f for f in access.filters if isinstance(f, service_module.ErrorsOnlyAccessLog)]
    access.removeFilter(only)
    try:
        with caplog.at_level(logging.INFO, logger=service_module.ACCESS_LOGGER):
            assert _predict(client, {"texts": ["fine"]}).status_code == 200
    finally:
        access.addFilter(only)
    (line,) = _access_lines(caplog, service_module)
    assert "path=/predict" in line and "status=200" in line, line


@pytest.mark.parametrize(
    ("args", "kept"),
    [
        (("1.2.3.4:5", "scheme=http", "status=200,type=application/json", 1.0), False),
        (("1.2.3.4:5", "scheme=http", "status=302", 1.0), False),
        (("1.2.3.4:5", "scheme=http", "status=413,length=80", 1.0), True),
        (("1.2.3.4:5", "scheme=http", "status=504", 1.0), True),
        (("1.2.3.4:5", "scheme=http", "code=200", 1.0), True),  # a format it cannot read
        (("1.2.3.4:5 - Client connected",), True),
    ],
)
def test_the_errors_filter_keeps_what_it_cannot_read(
    service_module: ModuleType, args: tuple[Any, ...], kept: bool
) -> None:
    """A line is dropped only when it names a status below 400: a format change logs more."""
    record = logging.LogRecord("bentoml.access", logging.INFO, __file__, 1, "%s", args, None)
    assert service_module.ErrorsOnlyAccessLog().filter(record) is kept


def test_the_service_parks_onnx_runtime_threads_between_requests(
    client: Any, service_module: ModuleType, direct: OnnxClassifier
) -> None:
    live = service_module._LIVE[0]
    sessions = [m.session for m in (live.model, live.lone_model) if m is not None]

    def parked(session: Any) -> bool:
        try:
            return bool(
                session.get_session_options().get_session_config_entry(STOP_SPINNING) == "1"
            )
        except RuntimeError:  # ONNX Runtime's answer for an option never set
            return False

    assert sessions and all(parked(s) for s in sessions)
    # Negative control: ONNX Runtime's default (what a batch job gets) keeps them spinning.
    assert not parked(direct.session)
