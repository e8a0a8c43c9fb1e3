"""The benchmark suite runs end to end on the tiny export, so its code cannot rot.

Only structure and sanity are asserted (positive throughputs, ratios that follow from the
absolute figures, both reports written with every section); never a timing threshold.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.exported import TinyExport
from textclf import io
from textclf.cli import app
from textclf.errors import ArtifactError, ConfigError
from textclf.repo_paths import RepoPaths
from textclf_dev.bench import BENCHMARKS, BenchOptions, pipeline, run_all, system
from textclf_dev.bench.child import run_child

HEADINGS = {
    "training": "### Training throughput: Lightning loop vs HF Trainer",
    "inference": "### Inference on CPU",
    "distill": "### Distilled student vs teacher (int8, CPU)",
    "serving": "### Service vs direct ONNX Runtime",
    "pipeline": "### Pipeline overhead",
    "image": "### Images",
}


def _close(ratio: float | None, numerator: float, denominator: float) -> None:
    assert ratio is not None
    assert ratio == pytest.approx(numerator / denominator, rel=1e-2, abs=2e-3)


def _check_reports(root: Path, results: dict[str, Any], selected: list[str]) -> str:
    """Both reports exist, agree with the returned results, and hold each section."""
    saved = io.read_json(RepoPaths(root).bench_json)
    markdown = RepoPaths(root).bench_markdown.read_text(encoding="utf-8")
    assert markdown == results["markdown"]
    assert saved["benchmarks"] == selected
    hw = saved["hardware"]
    assert hw["cpu"] and hw["cores"] >= 1 and hw["gpu"]
    assert {"python", "torch", "onnxruntime"} <= set(hw["versions"])
    assert "## Benchmarks (quick" in markdown and "### Summary" in markdown
    assert f"GPU: {hw['gpu']}" in markdown and f"torch {hw['versions']['torch']}" in markdown
    for name in BENCHMARKS:
        assert (HEADINGS[name] in markdown) == (name in selected), name
    if "image" in selected:  # a temporary root is no release: measured where `make image` built
        assert saved["image"]["skipped"] and "make image" in saved["image"]["skipped"]
    for row in saved["summary"]:
        assert row["value"] is not None and row["value"] > 0, row
        if row["reference"]:
            _close(row["ratio"], row["value"], row["reference"])
    return markdown


def _check_training(t: dict[str, Any], options: BenchOptions) -> None:
    assert t["steps"] == options.train_steps and t["backbone"] == "tiny"
    for loop in ("lightning", "hf_trainer"):
        assert len(t["runs"][loop]) == options.train_repeats
        for run in t["runs"][loop]:
            assert run["timed_steps"] == options.train_steps
            assert run["samples_per_second"] > 0 and run["peak_rss_mb"] > 50
        best = max(r["samples_per_second"] for r in t["runs"][loop])
        assert t[f"{loop}_samples_per_second"] == best
    # the HF reference never sees a short batch; bucketing may give ours one
    assert all(
        r["timed_samples"] == options.train_steps * t["batch_size"] for r in t["runs"]["hf_trainer"]
    )
    _close(
        t["ratio_vs_hf_trainer"],
        t["lightning_samples_per_second"],
        t["hf_trainer_samples_per_second"],
    )
    _close(
        t["peak_rss_ratio_vs_hf_trainer"], t["lightning_peak_rss_mb"], t["hf_trainer_peak_rss_mb"]
    )


def _check_inference(inf: dict[str, Any]) -> None:
    assert set(inf["batch"]) == {"1", "32"}
    for engines in inf["batch"].values():
        assert set(engines) == {"torch", "onnx_fp32", "onnx_int8"}
        for row in engines.values():
            assert row["texts_per_s"] > 0 and 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
            _close(
                row["throughput_vs_reference"], row["texts_per_s"], engines["torch"]["texts_per_s"]
            )
    gpu = inf["gpu"]
    if gpu["available"]:
        assert {"torch_cuda"} <= set(gpu["batch"]["1"])
    else:
        assert "no GPU" in gpu["reason"]


def test_quick_training_and_inference(bench_root: Path) -> None:
    """`textclf bench --quick` through the CLI: training and inference, reports written."""
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--root",
            str(bench_root),
            "--quick",
            "--only",
            "training",
            "--only",
            "inference",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "### Summary" in result.stdout
    saved = io.read_json(RepoPaths(bench_root).bench_json)
    saved["markdown"] = RepoPaths(bench_root).bench_markdown.read_text(encoding="utf-8")
    markdown = _check_reports(bench_root, saved, ["training", "inference"])
    _check_training(saved["training"], BenchOptions.for_mode(quick=True))
    _check_inference(saved["inference"])
    assert "### Memory (peak resident set)" in markdown and "### Inference on GPU" in markdown
    figures = {row["figure"] for row in saved["summary"]}
    assert "training throughput: Lightning loop vs HF Trainer" in figures
    assert "CPU inference, batch 32: ONNX int8 vs torch eager" in figures
    goals = {row["figure"]: row for row in saved["summary"] if row["goal"]}
    int8 = goals["CPU inference, batch 1: ONNX int8 vs torch eager"]  # issue 4's goal
    assert int8["goal"] == ">= 2.5x"
    assert int8["met"] == (int8["value"] >= 2.5 * int8["reference"])


@pytest.mark.slow
def test_quick_suite_runs_every_benchmark(bench_root: Path, exported: TinyExport) -> None:
    """Every benchmark, including `bentoml serve` under load, in one quick run."""
    options = BenchOptions.for_mode(quick=True, train_repeats=2)
    results = run_all(RepoPaths(bench_root), quick=True, params=exported.params, options=options)
    _check_reports(bench_root, results, list(BENCHMARKS))
    _check_training(results["training"], options)
    _check_inference(results["inference"])
    distilled = results["distill"]  # the tiny teacher (2 layers) against a one-layer cut
    assert (distilled["teacher"]["layers"], distilled["student"]["layers"]) == (2, 1)
    assert distilled["student"]["int8_size_mb"] < distilled["teacher"]["int8_size_mb"]
    for bs, engines in distilled["batch"].items():
        s, t = engines["student_int8"], engines["teacher_int8"]
        _close(s["throughput_vs_reference"], s["texts_per_s"], t["texts_per_s"])
        row = next(r for r in results["summary"] if r["figure"].endswith(f"int8 batch {bs}"))
        assert row["met"] == (s["throughput_vs_reference"] >= 2.0)
    assert "### Distilled student vs teacher" in results["markdown"]
    assert "not measured in this workspace" in results["markdown"]  # no trained student here
    serving = results["serving"]
    assert set(serving["levels"]) == {"1", "8"}
    for level in serving["levels"].values():
        s, d = level["service"], level["direct"]
        assert not s["errors"] and s["texts"] == level["requests"] and d["texts_per_s"] > 0
        assert s["p50_ms"] <= s["p95_ms"] <= s["p99_ms"]
        _close(level["throughput_ratio"], s["texts_per_s"], d["texts_per_s"])
        assert level["round_ratios"] == [level["throughput_ratio"]]  # quick: one round
    overhead = serving["overhead"]  # the same service with a no-op model
    assert set(overhead["levels"]) == {"1", "16"}
    for row in overhead["levels"].values():
        assert not row["errors"] and row["requests"] == overhead["requests_per_level"]
        assert 0 < row["noop_model_cpu_ms_per_text"] < row["server_cpu_ms_per_request"]
        assert row["own_cpu_ms_per_request"] == pytest.approx(
            row["server_cpu_ms_per_request"] - row["noop_model_cpu_ms_per_text"], abs=0.002
        )
        assert row["client_cpu_ms_per_request"] > 0
        # The bare HTTP stack costs something, and less than the service on the same stack, or
        # than a stock BentoML service on it (which answered every request too).
        assert 0 < row["http_floor_cpu_ms_per_request"] < row["server_cpu_ms_per_request"]
        assert row["http_floor_cpu_ms_per_request"] < row["bentoml_default_cpu_ms_per_request"]
        assert not row["http_floor_errors"] and not row["bentoml_default_errors"]
    own = [r for r in results["summary"] if r["figure"].startswith("service's own CPU")]
    assert [r["met"] for r in own] == [r["value"] <= 0.5 for r in own] and len(own) == 2
    assert "#### The service's own CPU per request" in results["markdown"]
    assert "HTTP floor CPU ms/request | BentoML default CPU ms/request" in results["markdown"]
    memory = serving["memory"]
    assert memory["processes"] == 1 + serving["workers"]  # the server and its workers
    assert 0 < memory["rss_after_load_mb"] <= memory["peak_rss_mb"]
    assert "service" in results["markdown"] and "sum of VmHWM" in results["markdown"]
    # the temp root is no DVC repository: the no-op repro is skipped, with the reason
    assert results["pipeline"]["noop_repro"]["skipped"].startswith("`dvc status` failed")


def test_errors_name_the_fix(tmp_path: Path, exported: TinyExport) -> None:
    with pytest.raises(ConfigError, match="unknown benchmark"):
        run_all(RepoPaths(tmp_path), only=["nope"], params=exported.params)
    with pytest.raises(ArtifactError, match="dvc repro export"):
        run_all(RepoPaths(tmp_path), only=["inference"])
    with pytest.raises(ArtifactError, match="dvc repro prepare"):
        run_all(RepoPaths(tmp_path), only=["training"], params=exported.params)
    with pytest.raises(ConfigError, match="train-steps=0"):
        BenchOptions.for_mode(quick=False, train_steps=0)
    assert not RepoPaths(tmp_path).bench_json.exists()


def test_child_errors_come_back_as_the_same_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found. Fix"):
        run_child("textclf.config.params:load_params", {"path": str(tmp_path / "params.yaml")})
    child = run_child("textclf_dev.bench.system:hardware")
    assert child["result"]["cores"] >= 1 and child["peak_rss_mb"] > 10


def test_tree_memory_sums_a_process_tree() -> None:
    script = (
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "time.sleep(30)"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        while len(system.process_tree(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        memory = system.tree_memory(proc.pid)
    finally:
        for pid in reversed(system.process_tree(proc.pid)):
            os.kill(pid, 9)
        proc.wait()
    assert memory["processes"] == 2
    assert memory["rss_mb"] == pytest.approx(sum(p["rss_mb"] for p in memory["per_process"]))
    assert all(0 < p["rss_mb"] <= p["peak_rss_mb"] for p in memory["per_process"])
    assert system.self_peak_rss_mb() > 10


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """A DVC project (no git) with one reproduced stage that counts its runs in runs.txt."""
    env = {**os.environ, **pipeline.ENV}
    subprocess.run([*pipeline.DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "dep.txt").write_text("a\n", encoding="utf-8")
    (tmp_path / "dvc.yaml").write_text(
        textwrap.dedent("""\
        stages:
          count:
            cmd: echo run >> runs.txt && cp dep.txt out.txt
            deps: [dep.txt]
            outs: [out.txt]
        """),
        encoding="utf-8",
    )
    subprocess.run([*pipeline.DVC, "repro", "-q"], cwd=tmp_path, check=True, env=env)
    return tmp_path


def test_pipeline_times_noop_repro_and_never_reruns_a_stage(dvc_repo: Path) -> None:
    runs = dvc_repo / "runs.txt"
    assert runs.read_text() == "run\n"
    clean = pipeline.run(dvc_repo, quick=True)
    assert clean["dvc_status"]["up_to_date"] and clean["noop_repro"]["skipped"] is None
    assert clean["noop_repro"]["still_up_to_date"] and clean["noop_repro"]["seconds"] > 0
    _close(
        clean["noop_repro"]["vs_dvc_startup"],
        clean["noop_repro"]["seconds"],
        clean["dvc_startup"]["seconds"],
    )
    assert clean["report"]["skipped"].startswith("`textclf report` failed")  # no git here
    assert runs.read_text() == "run\n"  # the no-op repro ran nothing

    (dvc_repo / "dep.txt").write_text("b\n", encoding="utf-8")
    changed = pipeline.run(dvc_repo, quick=True)
    assert changed["dvc_status"]["changed"] == ["count"]
    assert "reports changes in ['count']" in changed["noop_repro"]["skipped"]
    assert changed["pr_path_seconds"] is None
    assert runs.read_text() == "run\n"  # ... and a changed pipeline is never reproduced
    text = pipeline.markdown(changed)
    assert "| no-op `dvc repro` | skipped |" in text and "| `dvc status` |" in text


def _tree_cpu_delta(code: str) -> float:
    """CPU seconds a process tree running ``code`` in a child of a sleeping parent used in 1 s."""
    from textclf_dev.bench.system import tree_cpu_seconds

    script = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {code!r}])\n"
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        time.sleep(1.0)  # both interpreters started
        before = tree_cpu_seconds(parent.pid)
        time.sleep(1.0)
        return tree_cpu_seconds(parent.pid) - before
    finally:
        os.killpg(parent.pid, signal.SIGKILL)  # the child too
        parent.wait()


def test_tree_cpu_counts_a_busy_child_and_not_an_idle_one() -> None:
    """The service's CPU per request is read this way, over the server's process tree."""
    busy = _tree_cpu_delta("while True: pass")
    idle = _tree_cpu_delta("import time; time.sleep(60)")  # negative control
    assert busy > 0.3, busy
    assert idle < 0.1, idle
