"""export: ONNX graph (torch dynamo exporter), int8 graph, parity gates, sizes and CPU latency.

Everything is built in a temporary directory; ``artifacts/onnx`` appears only when the fp32
graph matches torch and the int8 graph keeps the labels and macro-F1 within the ``export`` gates.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from textclf import io
from textclf.config.distill import DistillParams
from textclf.config.export import ExportParams
from textclf.data.prepared import LABEL, TEXT, read_labels, read_split
from textclf.data.text import META_FILE, TOKENIZER_FILE, TextEncoder
from textclf.errors import ArtifactError
from textclf.inference import GRAPH_FILES, INPUT_NAMES, OUTPUT_NAME, OnnxClassifier
from textclf.latency import padded_batches, ratio, time_engines
from textclf.metrics import macro_f1
from textclf.outputs.export import ExportMetrics
from textclf.paths import Paths
from textclf.quantize import quantize_int8

EXAMPLE_TEXTS = ["a short example", "a second, longer example text that makes the batch padded"]


class Inputs(Protocol):
    """The params sections this stage reads: `dvc.yaml` lists the same (a test checks)."""

    @property
    def export(self) -> ExportParams: ...

    @property
    def distill(self) -> DistillParams: ...


def export_onnx(model: Any, encoder: TextEncoder, target: Path, opset: int) -> Path:
    """Export ``model`` (input_ids, attention_mask -> logits) with dynamic batch and sequence.

    Attention is exported as transformers' plain ("eager") implementation: the exporter turns
    torch's fused SDPA into the same MatMul/Softmax plus NaN guards, so the eager graph has a
    quarter fewer nodes (244 vs 316 for MiniLM) and runs about 5% faster at batch 1 on CPU.
    ``model`` keeps its own attention implementation afterwards.
    """
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    example = encoder(EXAMPLE_TEXTS)
    args = tuple(torch.from_numpy(example[name]) for name in INPUT_NAMES)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        torch.onnx.export(
            Logits(model).eval(),
            args,
            str(target),
            dynamo=True,
            verbose=False,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            external_data=True,
            dynamic_shapes={name: {0: batch, 1: sequence} for name in INPUT_NAMES},
        )
    finally:
        model.set_attn_implementation(attention)
    strip_debug_metadata(target)
    return target


def strip_debug_metadata(graph_file: Path) -> None:
    """Drop the exporter's per-node debug metadata (stack traces with this checkout's absolute
    paths, FX node text) so the same model exports to the same bytes in any clone: the graph's
    md5 in dvc.lock, and so the release tag, then depend on the model only."""
    import onnx

    model = onnx.load(str(graph_file), load_external_data=False)  # weights stay in .onnx.data
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    with io.atomic_path(graph_file) as tmp:
        onnx.save(model, str(tmp))


def size_mb(files: list[Path]) -> float:
    """Total size of ``files`` in MB (10^6 bytes)."""
    return round(sum(f.stat().st_size for f in files if f.is_file()) / 1e6, 3)


def measure_latency(
    model: Any,
    engines: dict[str, OnnxClassifier],
    encoder: TextEncoder,
    texts: list[str],
    cfg: ExportParams,
) -> dict[str, Any]:
    """p50/p95 and texts/s per batch size for torch eager and each ONNX graph (same batches)."""
    import torch

    def torch_call(batch: dict[str, np.ndarray]) -> None:
        with torch.inference_mode():
            model(**{k: torch.from_numpy(v) for k, v in batch.items()})

    calls = {"torch": torch_call} | {
        f"onnx_{name}": (lambda b, c=clf: c.run(b["input_ids"], b["attention_mask"]))
        for name, clf in engines.items()
    }
    result: dict[str, Any] = {}
    for bs in cfg.latency_batch_sizes:
        batches, sizes = padded_batches(encoder, texts, bs)
        timed = time_engines(calls, batches, sizes, cfg.latency_runs, cfg.latency_warmup)
        base = timed["torch"]["texts_per_s"]
        for row in timed.values():
            row["speedup_vs_torch"] = ratio(row["texts_per_s"], base)
        result[f"batch_{bs}"] = timed
    return result


def check_gates(metrics: dict[str, Any], cfg: ExportParams) -> list[str]:
    """The failed gates, each as 'what: value vs threshold. Fix: ...' (empty when all pass)."""
    failures = []
    fp32, int8 = metrics["fp32"], metrics["int8"]
    if not fp32["max_abs_logit_diff"] <= cfg.max_abs_logit_diff:
        failures.append(
            f"fp32 parity: max |logit diff| torch vs ONNX = {fp32['max_abs_logit_diff']:.3g} > "
            f"export.max_abs_logit_diff = {cfg.max_abs_logit_diff:.3g}. Fix: check the "
            "torch/onnx/onnxruntime versions or try another export.opset; raise the threshold "
            "only if the difference is understood."
        )
    if not int8["agreement"] >= cfg.int8_min_agreement:
        failures.append(
            f"int8 agreement with torch = {int8['agreement']:.4f} < export.int8_min_agreement "
            f"= {cfg.int8_min_agreement}. Fix: serve fp32 (serve.variant: fp32) and relax "
            "the int8 gate, or improve the model's margins."
        )
    if not int8["macro_f1_drop"] <= cfg.int8_max_f1_drop:
        failures.append(
            f"int8 macro-F1 drop = {int8['macro_f1_drop']:.4f} > export.int8_max_f1_drop = "
            f"{cfg.int8_max_f1_drop}. Fix: serve fp32 (serve.variant: fp32) and relax the "
            "int8 gate."
        )
    return failures


@dataclass
class OtherModel:
    """With distillation on: the model that does not ship (the teacher when the student
    ships, else the student), exported and quantised the same way, to compare with."""

    name: str  # "teacher" or "student"
    layers: int
    engine: OnnxClassifier
    int8_size_mb: float

    def comparison(
        self,
        metrics: dict[str, Any],
        test: tuple[list[str], np.ndarray, int],
        cfg: ExportParams,
        shipped_layers: int,
    ) -> dict[str, Any]:
        """Student vs teacher: int8 size, macro-F1 and texts/s per batch size (one run).
        ``test``: the test texts, their label ids and the number of labels."""
        texts, y_true, n_labels = test
        other_f1 = macro_f1(y_true, self.engine.logits(texts, cfg.batch_size).argmax(1), n_labels)
        sides = {
            "shipped": {
                "layers": shipped_layers,
                "int8_size_mb": metrics["int8"]["size_mb"],
                "int8_macro_f1": metrics["int8"]["macro_f1"],
                "texts_per_s": {},
            },
            "other": {
                "layers": self.layers,
                "int8_size_mb": self.int8_size_mb,
                "int8_macro_f1": other_f1,
                "texts_per_s": {},
            },
        }
        for key, engines in metrics["latency"].items():
            if isinstance(engines, dict):
                sides["shipped"]["texts_per_s"][key] = engines["onnx_int8"]["texts_per_s"]
                sides["other"]["texts_per_s"][key] = engines[f"onnx_int8_{self.name}"][
                    "texts_per_s"
                ]
        shipped_name = "teacher" if self.name == "student" else "student"
        student = sides["other" if self.name == "student" else "shipped"]
        teacher = sides["shipped" if self.name == "student" else "other"]
        return {
            "shipped": shipped_name,
            "student": student,
            "teacher": teacher,
            "throughput_ratio": {
                k: ratio(v, teacher["texts_per_s"][k]) for k, v in student["texts_per_s"].items()
            },
            "size_ratio": ratio(student["int8_size_mb"], teacher["int8_size_mb"]),
            "macro_f1_drop": teacher["int8_macro_f1"] - student["int8_macro_f1"],
        }


def compare_model(
    paths: Paths,
    ship_student: bool,
    scratch: Path,
    cfg: ExportParams,
    calibration: list[dict[str, np.ndarray]] | None,
) -> OtherModel:
    """Export and quantise the model that does not ship into ``scratch``."""
    from textclf.models.predict import load_trained, shipped_model_dir

    model_dir = shipped_model_dir(paths, not ship_student)
    model, _ = load_trained(model_dir)
    fp32 = export_onnx(
        model, TextEncoder.from_dir(model_dir), scratch / GRAPH_FILES["fp32"], cfg.opset
    )
    int8 = quantize_int8(fp32, scratch / GRAPH_FILES["int8"], cfg, calibration)
    for name in (TOKENIZER_FILE, META_FILE):
        shutil.copy2(model_dir / name, scratch / name)
    engine = OnnxClassifier(
        scratch, "int8", providers=["CPUExecutionProvider"], threads=cfg.threads
    )
    return OtherModel(
        name="teacher" if ship_student else "student",
        layers=int(model.config.num_hidden_layers),
        engine=engine,
        int8_size_mb=size_mb([int8, int8.with_name(int8.name + ".data")]),
    )


def time_and_compare(
    params: Inputs,
    paths: Paths,
    shipped: tuple[Any, dict[str, OnnxClassifier]],
    sample: list[str],
    metrics: dict[str, Any],
    test: tuple[list[str], np.ndarray, int],
    calibration: list[dict[str, np.ndarray]] | None,
) -> dict[str, Any]:
    """``latency`` of torch and the shipped graphs; with distillation on, the model that does
    not ship is exported and timed in the same run, and ``distill`` compares the two."""
    import torch

    cfg, (model, engines) = params.export, shipped
    encoder = engines["int8"].encoder  # the shipped model's (the student shares the teacher's)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="textclf-compare-") as scratch:
        other = None
        if params.distill.enabled:
            other = compare_model(paths, params.distill.ship, Path(scratch), cfg, calibration)
            engines = engines | {f"int8_{other.name}": other.engine}
        out["latency"] = measure_latency(model, engines, encoder, sample, cfg)
        out["latency"]["threads"] = cfg.threads or torch.get_num_threads()
        if other is not None:
            out["distill"] = other.comparison(
                metrics | out, test, cfg, model.config.num_hidden_layers
            )
    return out


def _remove_stale(paths: Paths) -> None:
    """Delete outputs of an earlier export: they no longer describe the current model."""
    shutil.rmtree(paths.onnx_dir, ignore_errors=True)
    paths.export_metrics.unlink(missing_ok=True)


def run(params: Inputs, paths: Paths) -> dict[str, Any]:
    """Export, quantise, gate on parity; write artifacts/onnx and reports/export/metrics.json."""
    import onnx
    import onnxruntime as ort
    import torch

    from textclf.models.predict import load_trained, predict_logits, shipped_model_dir

    cfg = params.export
    labels = read_labels(paths)
    model_dir = shipped_model_dir(paths, params.distill.ship)
    test = read_split(paths, "test")
    model, encoder = load_trained(model_dir)
    if encoder.meta.labels != labels:
        raise ArtifactError(
            f"the model in {model_dir} was trained for labels "
            f"{encoder.meta.labels}, but prepare wrote {labels}. Fix: dvc repro."
        )
    texts = test[TEXT].astype(str).tolist()
    calibration = None
    if cfg.int8_smooth_alpha > 0:
        train_texts = read_split(paths, "train")[TEXT].astype(str)
        calibration, _ = padded_batches(
            encoder,
            train_texts.sample(
                n=min(cfg.int8_calibration_size, len(train_texts)), random_state=cfg.seed
            ).tolist(),
            cfg.batch_size,
        )
    y_true = test[LABEL].map({lab: i for i, lab in enumerate(labels)}).to_numpy()
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        with io.atomic_dir(paths.onnx_dir) as out:
            fp32_path = export_onnx(model, encoder, out / GRAPH_FILES["fp32"], cfg.opset)
            onnx.checker.check_model(str(fp32_path), full_check=True)
            int8_path = quantize_int8(fp32_path, out / GRAPH_FILES["int8"], cfg, calibration)
            onnx.checker.check_model(str(int8_path), full_check=True)
            for name in (TOKENIZER_FILE, META_FILE):
                shutil.copy2(model_dir / name, out / name)

            cpu = ["CPUExecutionProvider"]
            engines = {
                v: OnnxClassifier(out, v, providers=cpu, threads=cfg.threads)
                for v in ("fp32", "int8")
            }
            ref = predict_logits(model, encoder, texts, cfg.batch_size)
            ref_f1 = macro_f1(y_true, ref.argmax(axis=1), len(labels))
            metrics: dict[str, Any] = {
                "n_test": len(texts),
                "opset": cfg.opset,
                "versions": {
                    "torch": torch.__version__,
                    "onnx": onnx.__version__,
                    "onnxruntime": ort.__version__,
                },
                "torch": {
                    "macro_f1": ref_f1,
                    "size_mb": size_mb(sorted(model_dir.glob("*.safetensors"))),
                },
            }
            for variant, clf in engines.items():
                logits = clf.logits(texts, cfg.batch_size)
                f1 = macro_f1(y_true, logits.argmax(axis=1), len(labels))
                graph = out / GRAPH_FILES[variant]
                metrics[variant] = {
                    "max_abs_logit_diff": float(np.abs(logits - ref).max(initial=0.0)),
                    "agreement": float((logits.argmax(1) == ref.argmax(1)).mean()),
                    "macro_f1": f1,
                    "macro_f1_drop": ref_f1 - f1,
                    "size_mb": size_mb([graph, graph.with_name(graph.name + ".data")]),
                    "model_version": clf.version,
                }
            failures = check_gates(metrics, cfg)
            metrics["gates"] = {
                "passed": not failures,
                "max_abs_logit_diff": cfg.max_abs_logit_diff,
                "int8_min_agreement": cfg.int8_min_agreement,
                "int8_max_f1_drop": cfg.int8_max_f1_drop,
            }
            if failures:
                _remove_stale(paths)
                raise ArtifactError(
                    f"export of {model_dir} failed {len(failures)} gate(s) on "
                    f"{len(texts)} test texts; nothing was written (an earlier "
                    f"{paths.onnx_dir} and {paths.export_metrics} were removed):\n  - "
                    + "\n  - ".join(failures)
                )
            sample = (
                pd.Series(texts)
                .sample(n=min(cfg.latency_sample_size, len(texts)), random_state=cfg.seed)
                .tolist()
            )
            metrics |= time_and_compare(
                params,
                paths,
                (model, engines),
                sample,
                metrics,
                (texts, y_true, len(labels)),
                calibration,
            )
    finally:
        torch.set_num_threads(threads_before)
    ExportMetrics.model_validate(metrics).write(paths.export_metrics)  # validated, then written
    return metrics
