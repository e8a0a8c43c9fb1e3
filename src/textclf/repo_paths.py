"""Paths of a checkout outside the pipeline: settings files, the lock, benchmark and review outputs.

No stage imports this module (their paths are :class:`textclf.paths.Paths`), so a path added
here for a later feature reruns no stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textclf.config.gate import GATE_FILE
from textclf.config.serve import SERVE_FILE
from textclf.paths import Paths


@dataclass(frozen=True)
class RepoPaths(Paths):
    """The pipeline's paths plus those the review, release and benchmark commands use."""

    @property
    def gate_file(self) -> Path:
        """The promotion gate's thresholds (outside the pipeline; read from the base branch)."""
        return self.root / GATE_FILE

    @property
    def serve_file(self) -> Path:
        """The service's settings (shipped in the serving image; no stage reads it)."""
        return self.root / SERVE_FILE

    @property
    def dvc_lock(self) -> Path:
        return self.root / "dvc.lock"

    @property
    def bench_json(self) -> Path:
        return self.root / "reports" / "bench.json"

    @property
    def bench_markdown(self) -> Path:
        return self.root / "reports" / "bench.md"

    @property
    def pr_report(self) -> Path:
        """The Markdown review posted as one pull-request comment."""
        return self.root / "reports" / "pr" / "report.md"

    @property
    def gate_verdict(self) -> Path:
        """The promotion gate's verdict (JSON): passed, and every check with its reason."""
        return self.root / "reports" / "pr" / "gate.json"

    @property
    def traffic_dir(self) -> Path:
        """The imported traffic snapshot (its own ``traffic.dvc``; never in git)."""
        return self.root / "traffic"

    @property
    def traffic_dvc(self) -> Path:
        return self.root / "traffic.dvc"

    @property
    def replay_dir(self) -> Path:
        """``textclf replay``'s output (built in the review, never committed)."""
        return self.root / "reports" / "replay"

    @property
    def replay_summary(self) -> Path:
        return self.replay_dir / "summary.json"

    @property
    def monitor_dir(self) -> Path:
        """``textclf monitor``'s verdict on production traffic (never committed)."""
        return self.root / "reports" / "monitor"
