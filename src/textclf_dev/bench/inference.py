"""Torch eager vs ONNX Runtime: fp32 and int8 on CPU, and CUDA vs CUDA when there is a GPU.

Each call classifies one batch end to end (normalise, tokenize, pad, run), so the figures are
what a caller sees; batches are length-sorted as in serving. The engines take turns, one pass
over the texts each, ``runs`` times. On CPU the reference is torch eager;
on a GPU it is torch eager on CUDA, against ONNX Runtime's CUDA execution provider (fp32 graph).
Figures are printed, never asserted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textclf.errors import ArtifactError
from textclf.latency import format_ratio, ratio, time_engines

BATCH_SIZES = (1, 32)
ENGINES = ("torch", "onnx_fp32", "onnx_int8", "torch_cuda", "onnx_cuda")  # table order
CUDA_EP = "CUDAExecutionProvider"


def default_texts(model_dir: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` test-split texts next to ``model_dir`` (artifacts/prepared), else toy texts."""
    import pandas as pd

    test = Path(model_dir).resolve().parent / "prepared" / "test.parquet"
    if test.is_file():
        texts = pd.read_parquet(test, columns=["text"])["text"].astype(str)
        return texts.sample(n=min(n, len(texts)), random_state=seed).tolist()
    from textclf_dev.toy import toy_frame

    return toy_frame(n, seed=seed)["text"].tolist()


def _sorted_chunks(texts: list[str], encoder: Any, batch_size: int) -> list[list[str]]:
    from textclf.data.text import length_sorted_batches

    lengths = [len(x) for x in encoder.encode(texts)]
    return [[texts[i] for i in b] for b in length_sorted_batches(lengths, batch_size)]


def _compare(
    engines: dict[str, Callable[[list[str]], Any]],
    reference: str,
    texts: list[str],
    encoder: Any,
    runs: int,
    warmup: int,
) -> dict[str, Any]:
    """Time each engine on the same length-sorted chunks per batch size; ratios vs ``reference``."""
    table: dict[str, Any] = {}
    for bs in BATCH_SIZES:
        chunks = _sorted_chunks(texts, encoder, bs)
        sizes = [len(c) for c in chunks]
        timed = time_engines(engines, chunks, sizes, runs, warmup)
        base = timed[reference]["texts_per_s"]
        for row in timed.values():
            row["throughput_vs_reference"] = ratio(row["texts_per_s"], base)
        table[str(bs)] = timed
    return table


def _gpu(
    model: Any, encoder: Any, model_dir: Path, texts: list[str], runs: int, warmup: int
) -> dict[str, Any]:
    """Torch on CUDA vs ONNX Runtime's CUDA provider; ``available: False`` and why without one."""
    import copy

    import onnxruntime as ort
    import torch

    from textclf.inference import OnnxClassifier
    from textclf.models.predict import predict_logits

    if not torch.cuda.is_available():
        return {"available": False, "reason": "no GPU (torch.cuda.is_available() is False)"}
    result: dict[str, Any] = {
        "available": True,
        "device": torch.cuda.get_device_name(0),
        "reference": "torch_cuda",
    }
    cuda_model = copy.deepcopy(model).to("cuda")
    engines: dict[str, Callable[[list[str]], Any]] = {
        "torch_cuda": lambda batch: predict_logits(cuda_model, encoder, batch, len(batch))
    }
    if CUDA_EP not in ort.get_available_providers():
        result["onnx_cuda"] = (
            f"skipped: this onnxruntime has no {CUDA_EP}. Fix: install "
            "onnxruntime-gpu (`make install EXTRAS=gpu,dev`)."
        )
    else:
        clf = OnnxClassifier(model_dir, "fp32", providers=[CUDA_EP, "CPUExecutionProvider"])
        if clf.providers[0] != CUDA_EP:
            result["onnx_cuda"] = (
                f"skipped: ONNX Runtime fell back to {clf.providers} (CUDA "
                "or cuDNN libraries missing?)."
            )
        else:
            engines["onnx_cuda"] = lambda batch: clf.logits(batch, len(batch))
    result["batch"] = _compare(engines, "torch_cuda", texts, encoder, runs, warmup)
    return result


def run(
    model_dir: Path,
    quick: bool = False,
    torch_dir: Path | None = None,
    texts: list[str] | None = None,
    threads: int = 0,
) -> dict[str, Any]:
    """Throughput (texts/s) and p50/p95/p99 latency per engine and batch size; ratios vs torch."""
    import torch

    from textclf.inference import OnnxClassifier
    from textclf.models.predict import load_trained, predict_logits

    model_dir = Path(model_dir)
    torch_dir = Path(torch_dir) if torch_dir else model_dir.parent / "model"
    if not (torch_dir / "config.json").is_file():
        raise ArtifactError(
            f"no trained torch model in {torch_dir} to compare with. Fix: run "
            "`dvc repro train` or pass torch_dir."
        )
    if threads:
        torch.set_num_threads(threads)
    texts = texts or default_texts(model_dir, 48 if quick else 512)
    runs, warmup = (1, 2) if quick else (3, 5)
    model, encoder = load_trained(torch_dir)
    onnx = {
        v: OnnxClassifier(model_dir, v, providers=["CPUExecutionProvider"], threads=threads)
        for v in ("fp32", "int8")
    }
    engines: dict[str, Callable[[list[str]], Any]] = {
        "torch": lambda batch: predict_logits(model, encoder, batch, len(batch)),
        "onnx_fp32": lambda batch: onnx["fp32"].logits(batch, len(batch)),
        "onnx_int8": lambda batch: onnx["int8"].logits(batch, len(batch)),
    }
    return {
        "texts": len(texts),
        "runs": runs,
        "warmup": warmup,
        "threads": threads or torch.get_num_threads(),
        "reference": "torch",
        "batch": _compare(engines, "torch", texts, encoder, runs, warmup),
        "gpu": _gpu(model, encoder, model_dir, texts, runs, warmup),
    }


def _rows(table: dict[str, Any]) -> list[str]:
    lines = []
    for bs in sorted(table, key=int):
        for name in sorted(table[bs], key=ENGINES.index):
            row = table[bs][name]
            lines.append(
                f"| {bs} | {name} | {row['texts_per_s']:.1f} | {row['p50_ms']:.2f} | "
                f"{row['p95_ms']:.2f} | {row['p99_ms']:.2f} | "
                f"{format_ratio(row['throughput_vs_reference'])} | "
                f"{', '.join(f'{x:.1f}' for x in row['runs_texts_per_s'])} |"
            )
    return lines


def markdown(results: dict[str, Any]) -> str:
    """Markdown tables of :func:`run`'s results (CPU, then GPU or why there is none)."""
    header = [
        "| batch | engine | texts/s | p50 ms | p95 ms | p99 ms | throughput vs {ref} | "
        "each pass (texts/s) |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    lines = [
        f"### Inference on CPU ({results['texts']} texts, {results['threads']} threads, "
        f"{results['runs']} alternating pass(es) per engine, end to end incl. tokenization, "
        "length-sorted batches)",
        "",
        header[0].format(ref="torch eager"),
        header[1],
        *_rows(results["batch"]),
        "",
    ]
    gpu = results["gpu"]
    if not gpu["available"]:
        lines.append(f"### Inference on GPU: {gpu['reason']}")
        return "\n".join(lines)
    lines += [
        f"### Inference on GPU ({gpu['device']})",
        "",
        header[0].format(ref="torch CUDA"),
        header[1],
        *_rows(gpu["batch"]),
    ]
    if isinstance(gpu.get("onnx_cuda"), str):
        lines += ["", f"ONNX Runtime CUDA: {gpu['onnx_cuda']}"]
    return "\n".join(lines)
