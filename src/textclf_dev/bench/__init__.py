"""Benchmarks outside the DAG (timings depend on the machine): ``textclf bench`` / ``make bench``.

Every figure is a ratio against a reference measured in the same run, next to the absolute
numbers and the machine (:mod:`textclf_dev.bench.system`):

- ``training``: our Lightning loop vs the HF ``Trainer`` (samples/s, peak RSS) -- :mod:`.training`
- ``inference``: torch eager vs ONNX Runtime fp32/int8 on CPU, CUDA vs CUDA on a GPU
- ``serving``: the BentoML service vs direct ONNX Runtime calls at several concurrencies, and
  the memory of the service's process tree
- ``pipeline``: a no-op ``dvc repro`` and the unchanged-model pull-request path
- ``image``: the serving image's size, time from ``podman run`` to ready and memory
  (:mod:`.image`; measured where ``make image`` built it)

Benchmarks that load models run in child processes (:mod:`.child`), so memory and threads do not
leak from one to the next. :func:`run_all` writes ``reports/bench.json`` and ``reports/bench.md``.
Figures are printed, never asserted: a slow machine does not fail the suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textclf import io
from textclf.config.params import Params
from textclf.errors import ArtifactError, ConfigError
from textclf.latency import format_ratio, ratio
from textclf.repo_paths import RepoPaths

BENCHMARKS = ("training", "inference", "distill", "serving", "pipeline", "image")
IMAGE_SIZE_GOAL_MB = 1000.0  # the CPU serving image, uncompressed
COLD_START_GOAL_S = 5.0  # podman run to /readyz
SERVICE_MEMORY_BUDGET_MB = 1024.0
INT8_GOAL_BATCH = "1"  # the batch size with an int8 throughput goal (larger ones: padding waste)
INT8_GOAL_RATIO = 2.5  # ONNX int8 texts/s vs torch eager on CPU
# service texts/s vs direct ONNX Runtime calls, by concurrency (the levels with a goal)
SERVICE_GOAL_RATIOS = {"1": 0.7, "16": 0.85, "32": 0.85}
DISTILL_GOAL_RATIO = 2.0  # the student's int8 texts/s vs the teacher's (at every batch size)
DISTILL_MAX_F1_DROP = 0.01  # macro-F1 the student may lose
SERVICE_OWN_CPU_GOAL_MS = 0.5  # the service's own CPU per request (model replaced by a no-op)
NOOP_REPRO_BUDGET_S = 2.0


@dataclass(frozen=True)
class BenchOptions:
    """Sizes of the benchmarks: :meth:`full` for ``make bench``, :meth:`quick` for the tests."""

    train_steps: int = 40
    train_warmup: int = 3
    train_repeats: int = 2
    pipeline_repeats: int = 3

    @classmethod
    def for_mode(cls, quick: bool, **overrides: int | None) -> BenchOptions:
        """Defaults of the full or quick suite, with the given (non-None) values instead."""
        base = (
            cls(train_steps=4, train_warmup=1, train_repeats=1, pipeline_repeats=1)
            if quick
            else cls()
        )
        values = {k: v for k, v in overrides.items() if v is not None}
        for key, value in values.items():
            if value < 1:
                raise ConfigError(f"bench option {key.replace('_', '-')}={value}: must be >= 1.")
        return replace(base, **values)


def run_all(
    paths: RepoPaths,
    model_dir: Path | None = None,
    quick: bool = False,
    only: Sequence[str] | None = None,
    params: Params | None = None,
    options: BenchOptions | None = None,
    base: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the selected benchmarks; write reports/bench.json and bench.md; return the results.

    ``params`` defaults to ``params.yaml`` under ``paths.root`` (the training benchmark uses its
    ``model`` and ``train`` sections); ``base`` is the git revision ``textclf report`` compares
    with in the pipeline benchmark; ``log`` receives one line per benchmark as it starts.
    """
    from textclf_dev.bench import system

    selected = list(dict.fromkeys(only or BENCHMARKS))
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        raise ConfigError(f"unknown benchmark(s) {unknown}. Fix: choose from {list(BENCHMARKS)}.")
    options = options or BenchOptions.for_mode(quick)
    model_dir = Path(model_dir) if model_dir else paths.onnx_dir
    if {"inference", "serving"} & set(selected) and not (model_dir / "textclf.json").is_file():
        raise ArtifactError(
            f"{model_dir} is not an ONNX export. Fix: run `dvc repro export` "
            "first, pass --model-dir, or leave out inference and serving "
            "(--only training --only pipeline)."
        )
    if {"training", "distill"} & set(selected) and params is None:
        from textclf.config.params import load_params

        params = load_params(paths.params)
    say = log or (lambda _: None)
    results: dict[str, Any] = {
        "quick": quick,
        "benchmarks": selected,
        "model_dir": model_dir,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": asdict(options),
        "hardware": system.hardware(),
        "seconds": {},
    }
    for name in selected:
        say(f"bench: {name} ...")
        started = time.perf_counter()
        results[name] = _run_one(name, paths, model_dir, quick, params, options, base)
        results["seconds"][name] = round(time.perf_counter() - started, 1)
        say(f"bench: {name} done in {results['seconds'][name]:.0f} s")
    results["summary"] = summary(results)
    text = markdown(results)
    io.write_json(paths.bench_json, results)
    io.write_text(paths.bench_markdown, text)
    return {**results, "markdown": text}


def _run_one(
    name: str,
    paths: RepoPaths,
    model_dir: Path,
    quick: bool,
    params: Params | None,
    options: BenchOptions,
    base: str | None,
) -> dict[str, Any]:
    from textclf_dev.bench import image, pipeline, serving, training
    from textclf_dev.bench.child import run_child

    if name == "training":
        if params is None:
            raise ConfigError("the training benchmark needs params (model and train sections).")
        return training.run(
            params,
            paths.root,
            steps=options.train_steps,
            warmup=options.train_warmup,
            repeats=options.train_repeats,
        )
    if name in ("inference", "distill"):
        result: dict[str, Any] = run_child(*_child_call(name, paths, model_dir, quick, params))[
            "result"
        ]
        return result
    if name == "serving":
        serve_file = paths.serve_file if paths.serve_file.is_file() else None
        return serving.run(model_dir, quick=quick, serve_file=serve_file)
    if name == "image":
        return image.run(paths.root, quick=quick)
    return pipeline.run(paths.root, quick=quick, repeats=options.pipeline_repeats, base=base)


def _child_call(
    name: str, paths: RepoPaths, model_dir: Path, quick: bool, params: Params | None
) -> tuple[str, dict[str, Any]]:
    """The child-process function and arguments of a benchmark that loads models."""
    if name == "inference":
        return "textclf_dev.bench.inference:run", {
            "model_dir": str(model_dir.resolve()),
            "quick": quick,
        }
    if params is None:
        raise ConfigError("the distill benchmark needs params (the distill section).")
    return "textclf_dev.bench.distill:run", {
        "torch_dir": str((paths.root / "artifacts" / "model").resolve()),
        "export_metrics": str(paths.root / "reports" / "export" / "metrics.json"),
        "layer_share": params.distill.layer_share,
        "layer_choice": params.distill.layer_choice,
        "quick": quick,
    }


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:  # noqa: C901, PLR0912  one block per benchmark
    """The headline figures: each with its value, its reference, their ratio and its goal."""
    rows: list[dict[str, Any]] = []

    def add(
        figure: str,
        value: float | None,
        unit: str,
        reference: float | None,
        reference_name: str,
        goal: str,
        met: bool | None,
    ) -> None:
        rows.append(
            {
                "figure": figure,
                "value": value,
                "unit": unit,
                "reference": reference,
                "reference_name": reference_name,
                "ratio": ratio(value, reference) if value is not None and reference else None,
                "goal": goal,
                "met": met,
            }
        )

    if "training" in results:
        t = results["training"]
        add(
            "training throughput: Lightning loop vs HF Trainer",
            t["lightning_samples_per_second"],
            "samples/s",
            t["hf_trainer_samples_per_second"],
            "HF Trainer",
            ">= 1.0x (aim 1.3x)",
            None if t["ratio_vs_hf_trainer"] is None else t["ratio_vs_hf_trainer"] >= 1.0,
        )
    if "inference" in results:
        for bs, engines in sorted(results["inference"]["batch"].items(), key=lambda kv: int(kv[0])):
            int8, torch = engines["onnx_int8"]["texts_per_s"], engines["torch"]["texts_per_s"]
            goal = bs == INT8_GOAL_BATCH
            add(
                f"CPU inference, batch {bs}: ONNX int8 vs torch eager",
                int8,
                "texts/s",
                torch,
                "torch eager",
                f">= {INT8_GOAL_RATIO}x" if goal else "",
                (int8 >= INT8_GOAL_RATIO * torch) if goal and torch else None,
            )
        gpu = results["inference"]["gpu"]
        for bs, engines in gpu.get("batch", {}).items():
            if "onnx_cuda" in engines:
                add(
                    f"GPU inference, batch {bs}: ONNX Runtime CUDA vs torch CUDA",
                    engines["onnx_cuda"]["texts_per_s"],
                    "texts/s",
                    engines["torch_cuda"]["texts_per_s"],
                    "torch CUDA",
                    "",
                    None,
                )
    if "distill" in results:
        _distill_rows(results["distill"], add)
    if "serving" in results:
        s = results["serving"]
        # goals at concurrency 1, 16 and 32; a quick run stops below the last two
        goal_levels = [c for c in SERVICE_GOAL_RATIOS if c in s["levels"]]
        for c in goal_levels or [max(s["levels"], key=int)]:
            level = s["levels"][c]
            goal = SERVICE_GOAL_RATIOS.get(c)
            add(
                f"service vs direct ONNX Runtime, concurrency {c} (p95 "
                f"{level['service']['p95_ms']:.1f} vs {level['direct']['p95_ms']:.1f} ms)",
                level["service"]["texts_per_s"],
                "texts/s",
                level["direct"]["texts_per_s"],
                "direct ONNX Runtime",
                f">= {goal}x" if goal else "",
                None
                if level["throughput_ratio"] is None or goal is None
                else level["throughput_ratio"] >= goal,
            )
        _overhead_rows(s.get("overhead", {}), add)
        peak = s["memory"]["peak_rss_mb"]
        add(
            f"service memory ({s['variant']}, peak RSS of the process tree)",
            peak,
            "MiB",
            SERVICE_MEMORY_BUDGET_MB,
            "1 GiB budget",
            "< 1 GiB",
            peak < SERVICE_MEMORY_BUDGET_MB,
        )
    if "training" in results:
        t = results["training"]
        add(
            "training memory: Lightning loop vs HF Trainer (peak RSS)",
            t["lightning_peak_rss_mb"],
            "MiB",
            t["hf_trainer_peak_rss_mb"],
            "HF Trainer",
            "",
            None,
        )
    if "pipeline" in results:
        p = results["pipeline"]
        repro = p["noop_repro"]
        if not repro.get("skipped"):
            add(
                "no-op `dvc repro`",
                repro["seconds"],
                "s",
                p["dvc_startup"]["seconds"],
                "`dvc --version`",
                "< 2 s",
                repro["seconds"] < NOOP_REPRO_BUDGET_S,
            )
        if not p["report"].get("skipped"):
            add(
                "`textclf report` (unchanged-model PR)",
                p["report"]["seconds"],
                "s",
                p["textclf_startup"]["seconds"],
                "`textclf --help`",
                "",
                None,
            )
    if "image" in results and not results["image"].get("skipped"):
        i = results["image"]
        add(
            "CPU serving image size (uncompressed)",
            i["size_mb"]["serving"],
            "MB",
            IMAGE_SIZE_GOAL_MB,
            "budget",
            "< 1 GB",
            i["size_mb"]["serving"] < IMAGE_SIZE_GOAL_MB,
        )
        add(
            "`podman run` to `/readyz` (cold start)",
            i["serving"]["ready_seconds"],
            "s",
            COLD_START_GOAL_S,
            "budget",
            "< 5 s",
            i["serving"]["ready_seconds"] < COLD_START_GOAL_S,
        )
        add(
            "serving container RSS after the load",
            i["serving"]["rss_mib"],
            "MiB",
            None,
            "",
            "",
            None,
        )
    return rows


def _distill_rows(d: dict[str, Any], add: Callable[..., None]) -> None:
    """The student's throughput ratio per batch size, and its macro-F1 drop when trained."""
    for bs, engines in sorted(d["batch"].items(), key=lambda kv: int(kv[0])):
        s, t = engines["student_int8"], engines["teacher_int8"]
        value = s["throughput_vs_reference"]
        add(
            f"distilled student vs teacher, int8 batch {bs}",
            s["texts_per_s"],
            "texts/s",
            t["texts_per_s"],
            "teacher int8",
            f">= {DISTILL_GOAL_RATIO}x",
            None if value is None else value >= DISTILL_GOAL_RATIO,
        )
    trained = d.get("trained")
    if trained:
        drop = trained["macro_f1_drop"]
        add(
            "distilled student: test macro-F1 lost (int8)",
            trained["student"]["int8_macro_f1"],
            "macro-F1",
            trained["teacher"]["int8_macro_f1"],
            "teacher int8",
            f"drop <= {DISTILL_MAX_F1_DROP}",
            drop <= DISTILL_MAX_F1_DROP,
        )


def _overhead_rows(overhead: dict[str, Any], add: Callable[..., None]) -> None:
    """Summary rows of the service's own CPU per request, one per concurrency."""
    for c, row in overhead.get("levels", {}).items():
        own = row["own_cpu_ms_per_request"]
        add(
            f"service's own CPU per request, concurrency {c} (no-op model)",
            own,
            "ms",
            row["server_cpu_ms_per_request"],
            "server CPU per request",
            f"<= {SERVICE_OWN_CPU_GOAL_MS} ms",
            own <= SERVICE_OWN_CPU_GOAL_MS,
        )


def _hardware_line(hw: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in hw["versions"].items())
    memory = f"{hw['memory_mb'] / 1024:.0f} GiB RAM" if hw["memory_mb"] else "RAM unknown"
    return (
        f"Machine: {hw['cpu']}, {hw['cores']} cores usable ({hw['logical_cpus']} logical), "
        f"{memory}, GPU: {hw['gpu']}. Versions: {versions}."
    )


def _summary_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "### Summary",
        "",
        "| figure | value | reference | ratio | goal | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        value = "n/a" if r["value"] is None else f"{r['value']:,.2f} {r['unit']}"
        ref = "n/a" if r["reference"] is None else f"{r['reference']:,.2f} ({r['reference_name']})"
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(
            f"| {r['figure']} | {value} | {ref} | {format_ratio(r['ratio'])} | "
            f"{r['goal'] or '-'} | {met} |"
        )
    return "\n".join(lines)


def memory_markdown(results: dict[str, Any]) -> str:
    """The memory table: training processes and the service's process tree."""
    lines = [
        "### Memory (peak resident set)",
        "",
        "| process | MiB | vs reference | note |",
        "|---|---:|---:|---|",
    ]
    if "training" in results:
        t = results["training"]
        lines += [
            f"| training: HF Trainer (child process) | {t['hf_trainer_peak_rss_mb']:.0f} | "
            "(reference) | VmHWM |",
            f"| training: Lightning loop (child process) | {t['lightning_peak_rss_mb']:.0f} "
            f"| {format_ratio(t['peak_rss_ratio_vs_hf_trainer'])} | VmHWM |",
        ]
    if "serving" in results:
        m = results["serving"]["memory"]
        variant = results["serving"]["variant"]
        lines += [
            f"| service ({variant}), idle after start | {m['idle_rss_mb']:.0f} | | "
            f"sum of VmRSS over {m['processes']} processes |",
            f"| service ({variant}), after the load | {m['rss_after_load_mb']:.0f} | | "
            "sum of VmRSS |",
            f"| service ({variant}), peak | {m['peak_rss_mb']:.0f} | "
            f"{format_ratio(ratio(m['peak_rss_mb'], SERVICE_MEMORY_BUDGET_MB))} of 1 GiB | "
            "sum of VmHWM (shared pages counted per process: an upper bound) |",
        ]
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """The whole report: machine, summary, then one section per benchmark that ran."""
    from textclf_dev.bench import distill, image, inference, pipeline, serving, training

    mode = "quick: rough figures, small sizes" if results["quick"] else "full"
    sections = [
        f"## Benchmarks ({mode})",
        _hardware_line(results["hardware"]) + f" Run started {results['started_at']}.",
        _summary_table(results["summary"]),
    ]
    renderers = {
        "training": training.markdown,
        "inference": inference.markdown,
        "distill": distill.markdown,
        "serving": serving.markdown,
        "pipeline": pipeline.markdown,
        "image": image.markdown,
    }
    for name in results["benchmarks"]:
        sections.append(renderers[name](results[name]))
    if "training" in results or "serving" in results:
        sections.append(memory_markdown(results))
    return "\n\n".join(sections) + "\n"
