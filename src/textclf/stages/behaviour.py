"""behaviour: the suite in ``behaviour.yaml`` on the exported graph serving runs.

Writes ``reports/behaviour/metrics.json`` (pass rate, threshold and the worst failing cases per
test) and ``summary.md``. With labels other than the default suite's, the label-specific tests
say they do not apply and the label-agnostic invariance tests still run.
"""

from __future__ import annotations

from typing import Any, Protocol

from textclf import io
from textclf.behaviour.render import render_markdown
from textclf.behaviour.runner import run_on_export
from textclf.behaviour.suite import read_suite_text
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
    rel = paths.behaviour_suite.relative_to(paths.root).as_posix()
    text = read_suite_text(paths.behaviour_suite)
    labels = read_labels(paths)
    report = run_on_export(text, rel, paths.onnx_dir, params.behaviour, labels)
    BehaviourReport.model_validate(report).write(paths.behaviour_metrics)  # validated, written
    io.write_text(paths.behaviour_markdown, render_markdown(report))
    return report
