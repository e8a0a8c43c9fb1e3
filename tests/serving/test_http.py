"""A real ``bentoml serve`` on 127.0.0.1: HTTP, health, metrics, documented calls, fuzz, load."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
import pytest
import yaml

from tests.deploy.conftest import BENTOML_REQUEST_LABELS
from tests.exported import TinyExport
from tests.serving.conftest import SERVE
from tests.serving.live import REFUSED, post_oversized, serving
from textclf.inference import OnnxClassifier
from textclf.records import is_feedback_file
from textclf_dev.bench.server import BentoServer
from textclf_dev.toy import toy_frame

TARGET = "textclf.serving.service:TextClassifier"
SERVING_DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"
SCHEMATHESIS = Path(sys.executable).with_name("st")
CLIENTS, REQUESTS, LOAD_LIMIT_S = 16, 320, 120
REJECTED = "Rejected request on /predict [POST]"  # the service's log line of a 400 from /predict
ATOL = 1e-6  # served vs in-process probabilities of one text (same graph, other batches)
MAX_TEXTS, MAX_CHARS = cast(int, SERVE["max_batch_size"]), cast(int, SERVE["max_text_chars"])
MAX_BODY = cast(int, SERVE["max_body_bytes"])


@pytest.fixture(scope="module")
def live_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Working directory, params (the test limits, a traffic log that keeps everything) and log."""
    tmp = tmp_path_factory.mktemp("live")
    serve = {**SERVE, "traffic_log": {"max_bytes": 50_000_000, "backups": 1}}
    (tmp / "serve.yaml").write_text(yaml.safe_dump(serve), encoding="utf-8")
    return tmp


@pytest.fixture(scope="module")
def server(live_dir: Path, exported: TinyExport) -> Iterator[BentoServer]:
    """``bentoml serve`` of the service module on the tiny export (fp32)."""
    env = {
        "TEXTCLF_MODEL_DIR": str(exported.onnx_dir),
        "TEXTCLF_SERVE_FILE": str(live_dir / "serve.yaml"),
        "TEXTCLF_TRAFFIC_DIR": str(live_dir / "traffic"),
        "TEXTCLF_ONNX_VARIANT": "fp32",
    }
    with serving(TARGET, env, cwd=live_dir, log=live_dir / "serve.log") as running:
        yield running


@pytest.fixture(scope="module")
def direct(exported: TinyExport) -> OnnxClassifier:
    """The same fp32 graph, called in process."""
    return OnnxClassifier(exported.onnx_dir, "fp32", threads=1)


def _post(server: BentoServer, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/predict", json=body, timeout=60, **kwargs)


def test_predict_over_http(server: BentoServer, direct: OnnxClassifier) -> None:
    texts = ["I love this phone", "the flight was delayed again"]
    resp = _post(server, {"texts": texts})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    served = np.array([[p["probabilities"][lab] for lab in direct.labels] for p in resp.json()])
    np.testing.assert_allclose(served, direct.predict_proba(texts), atol=1e-5)
    assert {p["model_version"] for p in resp.json()} == {direct.version}


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
def test_health_over_http(server: BentoServer, path: str) -> None:
    assert httpx.get(f"{server.url}{path}", timeout=10).status_code == 200


def test_bad_requests_over_http_are_4xx(server: BentoServer) -> None:
    too_many = _post(server, {"texts": ["a"] * (MAX_TEXTS + 1)})
    assert too_many.status_code == 400
    assert "at most 8 are accepted per request. Fix:" in too_many.json()["detail"][0]["msg"]
    not_json = httpx.post(
        f"{server.url}/predict",
        content=b"texts=a",
        timeout=60,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert not_json.status_code == 415
    assert "Content-Type: application/json" in not_json.json()["error"]


def _samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of every sample of metric ``name`` (label sets as sorted strings)."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            out[labels] = float(value)
    return out


def test_metrics_over_http(server: BentoServer) -> None:
    assert _post(server, {"texts": ["metrics over http"]}).status_code == 200
    assert _post(server, {"texts": [""]}).status_code == 400
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    requests = _samples(text, "bentoml_service_request_total")
    for code in ("200", "400"):
        hits = [
            v
            for k, v in requests.items()
            if 'endpoint="/predict"' in k
            and f'http_response_code="{code}"' in k
            and 'service_name="textclf"' in k
        ]
        assert hits and hits[0] >= 1, (code, requests)
    # The labels the canary analysis matches on (tests/deploy: after the scrape, `endpoint` is
    # kept as exported_endpoint).
    names = {m.group(1) for key in requests for m in re.finditer(r'(\w+)="', key)}
    assert names == BENTOML_REQUEST_LABELS, names
    assert _samples(text, "bentoml_service_request_duration_seconds_bucket")
    assert sum(_samples(text, "textclf_predictions_total").values()) >= 1
    assert not [k for k, v in requests.items() if 'http_response_code="5' in k and v > 0]


def _raw_request(server: BentoServer, head: str, body_parts: list[bytes]) -> tuple[bytes, float]:
    """Send a request head and some body parts on a raw socket; the response and its time."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        started = time.perf_counter()
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for part in body_parts:
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed: stop sending, read the answer
                break
        response = b""
        while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
        return response, time.perf_counter() - started


def test_a_20_mb_body_gets_413_without_being_read(server: BentoServer) -> None:
    """The client declares 20 MB and sends 64 KiB: the answer comes without the rest."""
    limit = MAX_BODY
    head = (
        "POST /predict HTTP/1.1\nHost: test\nContent-Type: application/json\n"
        "Content-Length: 20000000\n"
    )
    response, elapsed = _raw_request(server, head, [b'{"texts": ["' + b"x" * 65536])
    status, _, rest = response.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413"), response[:300]
    error = json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]
    assert f"limit of {limit} bytes" in error and "max_body_bytes" in error and "Fix:" in error
    print(f"\n20 MB declared body: 413 after {elapsed * 1000:.1f} ms (64 KiB of it sent)")
    # A client that sends all 20 MB at once gets the same answer.
    answer, took = post_oversized(server.url, 20_000_000)
    print(f"20 MB body sent in full by httpx: {answer} after {took:.2f} s")
    assert answer in REFUSED


def test_a_chunked_body_over_the_limit_gets_413(server: BentoServer) -> None:
    head = (
        "POST /predict HTTP/1.1\nHost: test\nContent-Type: application/json\n"
        "Transfer-Encoding: chunked\n"
    )
    chunk = b"x" * 16384
    parts = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * (MAX_BODY // 16384 + 4)
    response, _ = _raw_request(server, head, parts)
    assert response.startswith(b"HTTP/1.1 413"), response[:300]


def _series(server: BentoServer) -> set[str]:
    """The label sets of every sample on /metrics that has an ``endpoint`` label."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    return {ln.rsplit(" ", 1)[0] for ln in text.splitlines() if "endpoint=" in ln}


def test_random_paths_add_no_metric_series(server: BentoServer) -> None:
    assert _post(server, {"texts": ["before the scan"]}).status_code == 200
    before = _series(server)
    rng = np.random.default_rng(0)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(200):
            path = "/" + "/".join(rng.choice(list("abcdefghij0123456789"), 8)) + f"/{i}"
            resp = client.post(path, json={}) if i % 2 else client.get(path)
            assert resp.status_code in (404, 405), (path, resp.status_code)
    after = _series(server)
    print(f"\n200 random paths: endpoint= series {len(before)} before, {len(after)} after")
    assert after == before
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    (count,) = [ln for ln in text.splitlines() if ln.startswith("textclf_unmatched_requests_total")]
    assert float(count.split()[-1]) >= 200  # they were counted, in one label-free series


def test_a_rejected_request_is_logged_without_its_text(server: BentoServer, live_dir: Path) -> None:
    marker = f"secret-{uuid.uuid4().hex}"
    resp = _post(server, {"texts": [marker + "z" * MAX_CHARS]})
    assert resp.status_code == 400
    assert marker not in resp.text  # the answer names the item and the fix, not the text
    log = live_dir / "serve.log"
    for _ in range(50):
        text = log.read_text("utf-8", errors="replace")
        if "Rejected request on /predict [POST]" in text:
            break
        time.sleep(0.1)
    assert "Rejected request on /predict [POST]: 1 validation error(s): texts: value_error" in text
    assert marker not in text and "input_value" not in text


def _readme_blocks() -> list[str]:
    """The ``bash`` blocks of docs/serving.md's "Serve the model" section."""
    section = SERVING_DOC.read_text("utf-8").split("## Serve the model", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)


def _is_script(block: str) -> bool:
    """A block whose commands build on each other (it sets a variable): it is run whole."""
    return re.search(r"^[A-Za-z_]\w*=", block, flags=re.MULTILINE) is not None


def _readme_commands() -> list[str]:
    """The curl commands of the section's other blocks (continuations joined), one by one."""
    blocks = [b for b in _readme_blocks() if not _is_script(b)]
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [ln.strip() for ln in lines if ln.strip().startswith("curl ")]


def _run_live(server: BentoServer, command: str) -> str:
    """Run documented bash against the live server; its stdout."""
    assert "http://127.0.0.1:3000/" in command, command
    live = command.replace("http://127.0.0.1:3000", server.url)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", live], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result.stdout


def test_the_readme_curl_examples_work(server: BentoServer) -> None:
    commands = _readme_commands()
    assert len(commands) >= 4, commands
    outputs = {command: _run_live(server, command) for command in commands}
    predict, error = [out for cmd, out in outputs.items() if "/predict" in cmd]
    assert [set(p) for p in json.loads(predict)] == [
        {"id", "label", "probabilities", "model_version"}
    ] * 2
    assert "texts[1] is empty or only whitespace. Fix:" in json.loads(error)["detail"][0]["msg"]
    health = [out for cmd, out in outputs.items() if "/healthz" in cmd or "/readyz" in cmd]
    assert health and all(out.strip() == "200" for out in health)
    (metrics,) = [out for cmd, out in outputs.items() if "/metrics" in cmd]
    assert "bentoml_service_request_total{" in metrics
    assert "textclf_predictions_total{" in metrics


def test_the_readme_feedback_example_works(server: BentoServer) -> None:
    """The feedback block (an id from /predict, then /feedback) runs as one script, and answers
    what the block's last comment shows."""
    (script,) = [b for b in _readme_blocks() if _is_script(b)]
    assert "/predict" in script and "/feedback" in script, script
    shown = json.loads(script.strip().splitlines()[-1].removeprefix("#").strip())
    assert shown == {"accepted": 1, "duplicates": 0}
    assert json.loads(_run_live(server, script)) == shown
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert sum(_samples(text, "textclf_feedback_total").values()) >= 1


def test_schema_fuzz_finds_no_server_error(server: BentoServer, live_dir: Path) -> None:
    """Schemathesis: examples, boundary/negative coverage and fuzzing of every operation."""
    report = live_dir / "schemathesis"
    result = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{server.url}/docs.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "150",
            "--workers",
            "2",
            "--request-timeout",
            "60",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=live_dir,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "6 selected / 6 total" in result.stdout  # /predict, /feedback, health and metrics
    if "No issues found" not in result.stdout:
        # The one warning expected: no generator can sign an id, so /feedback answers nearly
        # every generated body with a 400 ("schema validation mismatch"); for it only.
        warnings = result.stdout.split(" WARNINGS ", 1)[1].split(" SUMMARY ", 1)[0]
        assert warnings.count("💡") == 1 and "Schema validation mismatch" in warnings, warnings
        assert re.findall(r"^\s*- (\w+ \S+)$", warnings, flags=re.MULTILINE) == [
            "POST /feedback"
        ], warnings
    codes = _samples(
        httpx.get(f"{server.url}/metrics", timeout=10).text, "bentoml_service_request_total"
    )
    assert not [k for k, v in codes.items() if 'http_response_code="5' in k and v > 0], codes


def test_concurrent_load_loses_and_mixes_up_nothing(
    server: BentoServer, direct: OnnxClassifier, live_dir: Path
) -> None:
    """16 clients, 320 requests of 1-4 distinct texts: every response answers its own request."""
    pool = toy_frame(REQUESTS * 4, seed=7)["text"].tolist()
    tag = f"load-{uuid.uuid4().hex[:8]}"
    requests = [
        [f"{tag} {i} {j} {pool[i * 4 + j]}" for j in range(1 + i % 4)] for i in range(REQUESTS)
    ]
    texts = [t for r in requests for t in r]
    assert len(set(texts)) == len(texts)
    rows = direct.predict_proba(texts)
    expected = dict(zip(texts, rows, strict=True))
    # A mix-up shows only where distinct texts get distinct outputs: most texts must be further
    # than 2 * ATOL from every other text's probabilities (the tiny model saturates).
    gaps = np.abs(rows[:, None, :] - rows[None, :, :]).max(axis=2)
    np.fill_diagonal(gaps, np.inf)
    assert (gaps.min(axis=1) > 2 * ATOL).mean() > 0.9

    local, clients = threading.local(), []
    deadline = time.monotonic() + LOAD_LIMIT_S

    def call(batch: list[str]) -> tuple[list[str], int, Any]:
        if time.monotonic() > deadline:
            return batch, -1, "not sent: time limit"
        if not hasattr(local, "client"):  # one connection pool per client thread
            local.client = httpx.Client(base_url=server.url, timeout=60)
            clients.append(local.client)
        resp = local.client.post("/predict", json={"texts": batch})
        return batch, resp.status_code, resp.json()

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=CLIENTS) as executor:
            results = list(executor.map(call, requests, timeout=LOAD_LIMIT_S + 60))
    finally:
        for client in clients:
            client.close()
    elapsed = time.monotonic() - started
    assert elapsed < LOAD_LIMIT_S, f"{REQUESTS} requests took {elapsed:.0f} s"
    statuses = Counter(status for _, status, _ in results)
    assert statuses == {200: REQUESTS}, (statuses, [r for r in results if r[1] != 200][:3])
    for batch, _, body in results:
        assert len(body) == len(batch)
        got = np.array([[p["probabilities"][lab] for lab in direct.labels] for p in body])
        np.testing.assert_allclose(got, np.array([expected[t] for t in batch]), atol=ATOL)
    # The batcher merged concurrent requests: some model call served more than one request
    # (the histogram observes the number of requests per call; one series per worker).
    sizes = _samples(
        httpx.get(f"{server.url}/metrics", timeout=10).text, "textclf_batch_requests_bucket"
    )
    single = sum(v for k, v in sizes.items() if 'le="1.0"' in k)
    total = sum(v for k, v in sizes.items() if 'le="+Inf"' in k)
    assert total > single, sizes
    # Every text was recorded exactly once.
    lines = [
        json.loads(line)
        for path in sorted((live_dir / "traffic").glob("*.jsonl*"))
        if not is_feedback_file(path.name)  # the feedback example's file is beside it
        for line in path.read_text("utf-8").split("\n")[:-1]  # JSON lines end with "\n" only
    ]
    logged = Counter(r["text"] for r in lines if r["text"].startswith(tag))
    assert logged == Counter(texts)


def _log_after_a_200_and_a_400(server: BentoServer) -> str:
    """The server's log once the lines of a 200 and then a 400 from /predict are in it.

    An access line is written after its response is sent, so a third request (another 400) is
    the barrier: the service logs its rejection while handling it, after the earlier lines.
    """
    rejections = server.log(tail=10**7).count(REJECTED)
    assert _post(server, {"texts": ["logged"]}).status_code == 200
    assert _post(server, {"texts": []}).status_code == 400
    assert _post(server, {"texts": []}).status_code == 400  # the barrier
    deadline = time.monotonic() + 10
    while (logged := server.log(tail=10**7)).count(REJECTED) < rejections + 2:
        assert time.monotonic() < deadline, logged[-2000:]
        time.sleep(0.05)
    return logged


def test_access_log_lines_follow_serve_access_log(
    server: BentoServer, exported: TinyExport, tmp_path: Path
) -> None:
    """By default a line per request answered with an error, none for a 200; every request with
    ``access_log: all``; none with ``access_log: false`` (the setting's earlier form)."""
    ok = re.compile(r"method=POST,path=/predict\S*\) \(status=200")
    rejected = re.compile(r"method=POST,path=/predict\S*\) \(status=400")
    logged = _log_after_a_200_and_a_400(server)
    assert rejected.search(logged), logged[-2000:]
    assert not ok.search(logged), logged[-2000:]

    env = {
        "TEXTCLF_MODEL_DIR": str(exported.onnx_dir),
        "TEXTCLF_TRAFFIC_DIR": "",
        "TEXTCLF_ONNX_VARIANT": "fp32",
    }
    for setting, lines in (("all", (ok, rejected)), (False, ())):
        run = tmp_path / str(setting)
        run.mkdir()
        (run / "serve.yaml").write_text(
            yaml.safe_dump({**SERVE, "access_log": setting}), encoding="utf-8"
        )
        with serving(
            TARGET, {**env, "TEXTCLF_SERVE_FILE": str(run / "serve.yaml")}, run, run / "serve.log"
        ) as other:
            logged = _log_after_a_200_and_a_400(other)
        assert [bool(line.search(logged)) for line in (ok, rejected)] == [
            line in lines for line in (ok, rejected)
        ], (setting, logged[-2000:])
