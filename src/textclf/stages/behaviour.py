"""behaviour: the suite in ``behaviour.yaml`` on the exported graph serving runs.

Writes ``reports/behaviour/metrics.json`` (pass rate, threshold and the worst failing cases per
test) and ``summary.md``. With labels other than the default suite's, the label-specific tests
say they do not apply and the label-agnostic invariance tests still run.
"""

from __future__ import annotations

from typing import Any, Protocol

from textclf import io
from textclf.behaviour.render import render_markdown
from textclf.behaviour.runner import run_suite
from textclf.behaviour.suite import parse_suite, read_suite_text, suite_digest
from textclf.config.behaviour import BehaviourParams
from textclf.data.prepared import read_labels
from textclf.outputs.behaviour import BehaviourReport
from textclf.paths import Paths


class Inputs(Protocol):
    """The params sections this stage reads: `dvc.yaml` lists the same (a test checks)."""

    @property
    def behaviour(self) -> BehaviourParams: ...


def run(params: Inputs, paths: Paths) -> dict[str, Any]:
    """Run every test; write the metrics and the Markdown summary; return the metrics."""
    from textclf.inference import load_for_labels

    cfg = params.behaviour
    rel = paths.behaviour_suite.relative_to(paths.root).as_posix()
    text = read_suite_text(paths.behaviour_suite)
    suite = parse_suite(text, rel)  # a bad suite fails here, before the model loads
    labels = read_labels(paths)
    model = load_for_labels(paths.onnx_dir, cfg.variant, labels, threads=cfg.threads)
    result = run_suite(
        suite,
        lambda texts: model.predict_proba(texts, cfg.batch_size),
        labels,
        cfg.max_failures,
    )
    report = {
        "suite": rel,
        "suite_sha256": suite_digest(text),
        "model": {"variant": cfg.variant, "version": model.version},
        **result,
    }
    BehaviourReport.model_validate(report).write(paths.behaviour_metrics)  # validated, written
    io.write_text(paths.behaviour_markdown, render_markdown(report))
    return report
