"""The BentoML service (a real ``bentoml serve`` on 127.0.0.1) vs direct OnnxClassifier calls.

At concurrency ``c`` the service gets ``c`` clients, each sending one-text ``/predict`` requests
back to back; the service's batcher merges them. The direct baseline classifies the same texts in
process, ``c`` at a time (the batch the service could form at best), so the ratio is the cost of
HTTP, validation, batching and JSON. Client and server share this machine's cores.
Bounded: a fixed number of requests per level and a time cap; figures are printed, never asserted.

The memory of the service is the resident set of the ``bentoml serve`` process tree (every worker),
read from /proc when it is idle after start-up and again after the last load level.

The service's own work per request (HTTP, validation, batching, ids, metrics, JSON) is measured
directly by :func:`overhead`: the same service and ``serve.yaml`` with the model replaced by a
bag-of-words ONNX graph (:func:`textclf_dev.toy.make_lexicon_export`) whose call costs
microseconds; the CPU time of the server's process tree per request, less what that graph and
its tokenizer cost in process, is the service's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from textclf.latency import format_ratio, ratio, summarize, time_engines
from textclf_dev.bench.server import BentoServer, UvicornServer
from textclf_dev.bench.system import tree_cpu_seconds, tree_memory

LEVELS = (1, 8, 16, 32)
ROUNDS = 3  # service/direct alternations per level in a full run; the median is reported
OVERHEAD_LEVELS = (1, 16)  # concurrencies at which the service's own CPU per request is measured
OVERHEAD_REQUESTS = 3000  # per level and server in a full run: +-1 tick is +-5% of the floor at 16
# The same load on two references, by row key: the HTTP stack alone (the floor of the server's
# CPU), and a BentoML service with the framework's defaults.
REFERENCES = {
    "http_floor": (UvicornServer, "textclf_dev.bench.floor:app"),
    "bentoml_default": (BentoServer, "textclf_dev.bench.stock:Stock"),
}


async def _load(
    url: str, texts: list[str], concurrency: int, requests: int, time_cap_s: float
) -> dict[str, Any]:
    """``requests`` one-text requests from ``concurrency`` clients; latencies and errors.

    The client is aiohttp (keep-alive, one connection per client): it costs about 0.35 ms of
    CPU per request here, against 1.7-2.7 ms for httpx, and client and server share the cores.
    """
    latencies: list[float] = []
    errors: dict[str, int] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(texts[i % len(texts)])
    deadline = time.perf_counter() + time_cap_s
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60.0)

    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:

        async def worker() -> None:
            while not queue.empty() and time.perf_counter() < deadline:
                text = queue.get_nowait()
                started = time.perf_counter()
                try:
                    async with client.post("/predict", json={"texts": [text]}) as resp:
                        body = await resp.read()
                    key = (
                        None
                        if resp.status == 200 and len(json.loads(body)) == 1
                        else str(resp.status)
                    )
                except (aiohttp.ClientError, TimeoutError, ValueError) as err:
                    key = type(err).__name__
                if key is None:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[key] = errors.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    row: dict[str, Any] = dict(summarize(latencies or [0.0], texts=len(latencies)))
    row["texts_per_s"] = round(len(latencies) / wall, 2) if wall > 0 else 0.0
    row.update(sent=len(latencies) + sum(errors.values()), errors=errors, not_sent=queue.qsize())
    return row


def load_test(
    url: str, texts: list[str], concurrency: int, requests: int, time_cap_s: float = 60.0
) -> dict[str, Any]:
    """Synchronous wrapper of the load generator (also used by the service tests)."""
    return asyncio.run(_load(url, texts, concurrency, requests, time_cap_s))


def _direct(
    clf: Any, texts: list[str], concurrency: int, requests: int, batch_size: int
) -> dict[str, Any]:
    """The same ``requests`` texts classified in process, ``concurrency`` per call."""
    stream = [texts[i % len(texts)] for i in range(requests)]
    chunks = [stream[i : i + concurrency] for i in range(0, len(stream), concurrency)]
    engine = {"direct": lambda chunk: clf.predict_proba(chunk, batch_size)}
    return time_engines(engine, chunks, [len(c) for c in chunks])["direct"]


def run(
    model_dir: Path,
    quick: bool = False,
    variant: str = "int8",
    texts: list[str] | None = None,
    levels: tuple[int, ...] | None = None,
    env: dict[str, str] | None = None,
    serve_file: Path | None = None,
) -> dict[str, Any]:
    """Throughput and p50/p95/p99 of the service vs direct calls at each concurrency level.

    ``serve_file`` is the serve.yaml the service reads (default: the one the service finds
    itself); ``env`` is added to the server's environment.
    """
    from textclf.inference import OnnxClassifier
    from textclf.serving.settings import (
        ENV_MODEL_DIR,
        ENV_SERVE_FILE,
        ENV_TRAFFIC_DIR,
        ENV_VARIANT,
        load_settings,
    )
    from textclf_dev.bench.inference import default_texts

    model_dir = Path(model_dir).resolve()
    levels = levels or ((1, 8) if quick else LEVELS)
    texts = texts or default_texts(model_dir, 64 if quick else 512)
    per_level = (lambda c: 4 * c + 8) if quick else (lambda c: max(200, 16 * c))
    server_env = {
        ENV_MODEL_DIR: str(model_dir),
        ENV_VARIANT: variant,
        ENV_TRAFFIC_DIR: "",
        **({ENV_SERVE_FILE: str(Path(serve_file).resolve())} if serve_file else {}),
        **(env or {}),
    }
    settings = load_settings({**os.environ, **server_env})
    batch_size = settings.params.inference_batch_size
    # The reference is one loop over the whole machine: ONNX Runtime's default threads (one per
    # core), whatever the service's per-worker ``serve.threads`` is.
    clf = OnnxClassifier(model_dir, variant, threads=0)  # type: ignore[arg-type]
    results: dict[str, Any] = {
        "variant": variant,
        "serve_file": settings.serve_file,
        "inference_batch_size": batch_size,
        "workers": settings.params.workers,
        "threads_per_worker": settings.params.threads,
        "batching": settings.params.batching.model_dump(),
        "levels": {},
    }
    rounds = 1 if quick else ROUNDS
    runs: dict[int, list[dict[str, Any]]] = {c: [] for c in levels}
    with BentoServer(env=server_env) as server:
        idle = tree_memory(server.pid)
        load_test(server.url, texts, 2, 10 if quick else 40)  # warm-up: connections, dispatcher
        # Service and direct alternate, level by level, round by round: a slow spell on this
        # shared machine then hits both sides of a ratio, and the median round is reported.
        for _ in range(rounds):
            for c in levels:
                n = per_level(c)
                service = load_test(server.url, texts, c, n, time_cap_s=30 if quick else 120)
                direct = _direct(clf, texts, c, n, batch_size)
                runs[c].append(
                    {
                        "requests": n,
                        "service": service,
                        "direct": direct,
                        "throughput_ratio": ratio(service["texts_per_s"], direct["texts_per_s"]),
                        "p95_ratio": ratio(service["p95_ms"], direct["p95_ms"]),
                    }
                )
        loaded = tree_memory(server.pid)
    for c, rows in runs.items():
        ordered = sorted(rows, key=lambda row: row["throughput_ratio"] or 0.0)
        median = ordered[(len(ordered) - 1) // 2]
        results["levels"][str(c)] = {
            **median,
            "round_ratios": [row["throughput_ratio"] for row in rows],
        }
    results["memory"] = {
        "idle_rss_mb": idle["rss_mb"],
        "rss_after_load_mb": loaded["rss_mb"],
        "peak_rss_mb": loaded["peak_rss_mb"],
        "processes": loaded["processes"],
        "per_process": loaded["per_process"],
    }
    results["overhead"] = overhead(
        texts, {**server_env, ENV_VARIANT: "int8"}, batch_size, quick=quick
    )
    return results


def _model_cpu_ms(clf: Any, texts: list[str], per_call: int, batch_size: int) -> float:
    """CPU ms per text of ``clf.predict_proba`` in this process, ``per_call`` texts a call."""
    chunks = [texts[i : i + per_call] for i in range(0, len(texts), per_call)]
    clf.predict_proba(chunks[0], batch_size)  # warm-up
    started = time.process_time()
    for chunk in chunks:
        clf.predict_proba(chunk, batch_size)
    return (time.process_time() - started) * 1000 / len(texts)


def overhead(
    texts: list[str],
    server_env: dict[str, str],
    batch_size: int,
    quick: bool = False,
    levels: tuple[int, ...] = OVERHEAD_LEVELS,
) -> dict[str, Any]:
    """The service's own CPU per request, with the model replaced by a near no-op.

    ``server_env`` is the real benchmark's server environment; only the model directory changes
    (to a bag-of-words export over the benchmark's words). Per level: CPU of the server's process
    tree and of this process (the client) per request, the no-op model's own cost per text in
    process at the same batch size, and their difference, the service's own CPU. Then the same
    load on :mod:`textclf_dev.bench.floor` under uvicorn: the CPU per request of the HTTP stack
    alone on this machine, part of the own CPU that no service code can remove. Last the same
    load on :mod:`textclf_dev.bench.stock`, a BentoML service with BentoML's defaults answering the
    same canned prediction: what the framework spends per request before any model runs.
    """
    from textclf.inference import OnnxClassifier
    from textclf.serving.settings import ENV_MODEL_DIR
    from textclf_dev.toy import make_lexicon_export

    # CPU time comes from /proc in clock ticks (10 ms): enough requests that the cheapest load
    # (the floor at concurrency 16, 0.07-0.09 ms a request here) spans several ticks.
    requests = 400 if quick else OVERHEAD_REQUESTS
    stream = [texts[i % len(texts)] for i in range(requests)]
    with tempfile.TemporaryDirectory(prefix="textclf-noop-") as tmp:
        words = sorted({word for text in texts for word in text.lower().split()})
        model_dir = make_lexicon_export(Path(tmp) / "noop", words)
        clf = OnnxClassifier(model_dir, "int8", threads=1)
        rows: dict[str, Any] = {}
        with BentoServer(env={**server_env, ENV_MODEL_DIR: str(model_dir)}) as server:
            for c, (load, server_ms, client_ms) in _cpu_per_request(server, texts, stream, levels):
                model_ms = _model_cpu_ms(clf, stream, c, batch_size)
                rows[str(c)] = {
                    "requests": max(load["texts"], 1),
                    "errors": load["errors"],
                    "texts_per_s": load["texts_per_s"],
                    "p50_ms": load["p50_ms"],
                    "p95_ms": load["p95_ms"],
                    "server_cpu_ms_per_request": round(server_ms, 3),
                    "noop_model_cpu_ms_per_text": round(model_ms, 3),
                    "own_cpu_ms_per_request": round(max(server_ms - model_ms, 0.0), 3),
                    "client_cpu_ms_per_request": round(client_ms, 3),
                }
    for key, (server_type, target) in REFERENCES.items():
        with server_type(target, env=server_env) as reference:
            for c, (load, ms, _) in _cpu_per_request(reference, texts, stream, levels):
                rows[str(c)][f"{key}_cpu_ms_per_request"] = round(ms, 3)
                rows[str(c)][f"{key}_errors"] = load["errors"]
    return {"requests_per_level": requests, "levels": rows}


def _cpu_per_request(
    server: BentoServer, texts: list[str], stream: list[str], levels: tuple[int, ...]
) -> list[tuple[int, tuple[dict[str, Any], float, float]]]:
    """Per level: the load of ``stream`` on ``server``, and its server and client CPU ms per
    request (after a warm-up of connections and dispatcher)."""
    load_test(server.url, texts, 2, 40)
    measured = []
    for c in levels:
        server_before, client_before = tree_cpu_seconds(server.pid), time.process_time()
        load = load_test(server.url, stream, c, len(stream), time_cap_s=120)
        done = max(load["texts"], 1)
        server_ms = (tree_cpu_seconds(server.pid) - server_before) * 1000 / done
        client_ms = (time.process_time() - client_before) * 1000 / done
        measured.append((c, (load, server_ms, client_ms)))
    return measured


def markdown(results: dict[str, Any]) -> str:
    """A Markdown table of :func:`run`'s results (its memory is in the suite's memory table)."""
    batching = results["batching"]
    lines = [
        f"### Service vs direct ONNX Runtime ({results['variant']}, one text per request)",
        "",
        f"`bentoml serve` on 127.0.0.1: {results['workers']} worker(s) x "
        f"{results['threads_per_worker'] or 'default'} ONNX Runtime thread(s), request "
        f"batching (up to {batching['max_texts']} texts per call, shed after "
        f"{batching['max_queue_ms']} ms); "
        "direct = `OnnxClassifier.predict_proba` in one process with ONNX Runtime's default "
        "threads (one per core) on the same texts, `concurrency` texts per call. Client "
        "(aiohttp) and server share the machine.",
        "",
        "| concurrency | requests | service texts/s | direct texts/s | service vs direct | "
        "service p50/p95/p99 ms | direct p50/p95/p99 ms | errors | every round |",
        "|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for c, row in results["levels"].items():
        s, d = row["service"], row["direct"]
        lines.append(
            f"| {c} | {row['requests']} | {s['texts_per_s']:.1f} | {d['texts_per_s']:.1f} | "
            f"{format_ratio(row['throughput_ratio'])} | {s['p50_ms']:.1f}/{s['p95_ms']:.1f}/"
            f"{s['p99_ms']:.1f} | {d['p50_ms']:.1f}/{d['p95_ms']:.1f}/{d['p99_ms']:.1f} | "
            f"{s['errors'] or 0} | {' '.join(format_ratio(r) for r in row['round_ratios'])} |"
        )
    if "overhead" in results:
        lines += ["", overhead_markdown(results["overhead"])]
    return "\n".join(lines)


def overhead_markdown(result: dict[str, Any]) -> str:
    """The table of :func:`overhead`."""
    lines = [
        "#### The service's own CPU per request (model replaced by a no-op)",
        "",
        "The same service and serve.yaml serving a bag-of-words ONNX graph (a Gather and a sum) "
        f"instead of the transformer; {result['requests_per_level']} one-text requests per "
        "level. own = CPU of the server's process tree per request less the no-op model's "
        "(tokenizer and graph) CPU per text measured in process at the same batch size. HTTP "
        "floor = the same load on a bare ASGI app under the same uvicorn (loop and parser), "
        "answering a canned prediction of the same size: the part of own that is the HTTP stack "
        "on this machine. BentoML default = the same load on a BentoML service with BentoML's "
        "default configuration (one sync API returning that prediction): the framework's own "
        "CPU per request, for scale. errors = failed requests of the three loads.",
        "",
        "| concurrency | requests/s | p50/p95 ms | server CPU ms/request | no-op model CPU "
        "ms/text | **own CPU ms/request** | HTTP floor CPU ms/request | BentoML default CPU "
        "ms/request | client CPU ms/request | errors |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    errors = ["errors", *(f"{key}_errors" for key in REFERENCES)]  # of the three loads
    for c, row in result["levels"].items():
        lines.append(
            f"| {c} | {row['texts_per_s']:.0f} | {row['p50_ms']:.2f}/{row['p95_ms']:.2f} | "
            f"{row['server_cpu_ms_per_request']:.3f} | {row['noop_model_cpu_ms_per_text']:.3f} | "
            f"**{row['own_cpu_ms_per_request']:.3f}** | "
            f"{row['http_floor_cpu_ms_per_request']:.3f} | "
            f"{row['bentoml_default_cpu_ms_per_request']:.3f} | "
            f"{row['client_cpu_ms_per_request']:.3f} "
            f"| {sum(sum(row[key].values()) for key in errors)} |"
        )
    return "\n".join(lines)
