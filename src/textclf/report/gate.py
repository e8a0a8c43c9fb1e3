"""The promotion gate: one function decides, ``textclf gate`` and the PR report both show it.

Every check reads a file a stage wrote and judges its figures with the policy in force (the base
revision's thresholds, :mod:`textclf.report.policy`), never a verdict the PR's stages recorded
with their own limits. A file that is missing fails its check with the file and the fix
(``dvc repro``), so a stage that did not run can never let a model through by omission.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from textclf.monitoring.drift import verdict as drift_verdict
from textclf.monitoring.slices import disparity
from textclf.outputs.base import Report
from textclf.outputs.drift import DriftSummary
from textclf.outputs.evaluate import EvaluateMetrics
from textclf.outputs.export import ExportMetrics
from textclf.outputs.replay import REPLAY_FIX, ReplaySummary
from textclf.outputs.slices import SlicesReport
from textclf.report.policy import Policy
from textclf.report.sources import Snapshot, sources

EPS = 1e-12
ReportT = TypeVar("ReportT", bound=Report)


@dataclass(frozen=True)
class Check:
    """One gate check: whether it passed, why, and whether a failure blocks promotion."""

    name: str
    passed: bool
    detail: str
    blocking: bool = True
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Verdict:
    """All checks of one gate run, against one base revision."""

    checks: list[Check]
    base: str
    base_commit: str | None
    #: Where the thresholds are not the base's, why (a first gate).
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when every blocking check passed."""
        return all(c.passed for c in self.checks if c.blocking)

    @property
    def failures(self) -> list[Check]:
        """The blocking checks that failed."""
        return [c for c in self.checks if c.blocking and not c.passed]

    @property
    def warnings(self) -> list[Check]:
        """The non-blocking checks that did not pass."""
        return [c for c in self.checks if not c.blocking and not c.passed]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: passed, the base, every check and the failure reasons."""
        return {
            "passed": self.passed,
            "base": {"ref": self.base, "commit": self.base_commit},
            "notes": list(self.notes),
            "checks": [asdict(c) for c in self.checks],
            "failures": [f"{c.name}: {c.detail}" for c in self.failures],
            "warnings": [f"{c.name}: {c.detail}" for c in self.warnings],
        }


def unavailable(snapshot: Snapshot, key: str) -> str:
    """Why ``key`` cannot be read: missing (with the fix) or unreadable."""
    src = sources()[key]
    if key == "replay":  # not a stage: the review runs it when a traffic snapshot exists
        how = "no traffic snapshot was replayed" if snapshot.text(key) is None else "unreadable"
        return f"{how} ({src.path}): {REPLAY_FIX}"
    if snapshot.text(key) is None:
        return f"missing {src.path}: run `dvc repro` (the {src.stage} stage writes it)"
    return f"unreadable {src.path}: rerun `dvc repro {src.stage}` to rewrite it"


def _typed(new: Snapshot, key: str, model: type[ReportT]) -> ReportT | str:
    """A report through its typed model; or why it cannot be read (missing, or which field is
    wrong, with the fix)."""
    report = new.report(key, model)
    if report is not None:
        return report
    return new.report_error(key) or unavailable(new, key)


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def check_regression(policy: Policy, new: Snapshot, base: Snapshot) -> Check:
    """Test macro-F1 may not fall more than ``max_macro_f1_drop`` below the base's."""
    name = "macro-F1 vs base"
    cfg = policy.gate
    metrics = _typed(new, "evaluate", EvaluateMetrics)
    if isinstance(metrics, str):
        return Check(name, False, metrics)
    current = metrics.macro_f1
    # The base's file may come from older code: its macro_f1 is all this check needs.
    before = _num(_get(base.json("evaluate"), "macro_f1"))
    if before is None:
        return Check(
            name,
            True,
            f"first model: {base.label} has no "
            f"{sources()['evaluate'].path} to regress from (macro-F1 {current:.4f})",
            value=current,
        )
    drop = before - current
    passed = drop <= cfg.max_macro_f1_drop + EPS
    return Check(
        name,
        passed,
        f"test macro-F1 {current:.4f} vs {before:.4f} on {base.label} "
        f"(Δ {current - before:+.4f}; allowed drop {cfg.max_macro_f1_drop:g})",
        value=current - before,
        threshold=-cfg.max_macro_f1_drop,
    )


def check_baseline(policy: Policy, new: Snapshot) -> Check:
    """Test macro-F1 must beat the TF-IDF baseline by ``min_macro_f1_over_baseline``."""
    name = "macro-F1 over TF-IDF baseline"
    cfg = policy.gate
    metrics = _typed(new, "evaluate", EvaluateMetrics)
    if isinstance(metrics, str):
        return Check(name, False, metrics)
    current, baseline = metrics.macro_f1, metrics.baseline.macro_f1
    margin = current - baseline
    return Check(
        name,
        margin >= cfg.min_macro_f1_over_baseline - EPS,
        f"macro-F1 {current:.4f} vs baseline {baseline:.4f} (margin {margin:+.4f}; "
        f"required {cfg.min_macro_f1_over_baseline:+g})",
        value=margin,
        threshold=cfg.min_macro_f1_over_baseline,
    )


def check_parity(policy: Policy, new: Snapshot) -> Check:
    """torch-vs-ONNX parity, judged from the export figures with the policy's export limits."""
    name = "export parity"
    limits, blocking = policy.export, policy.gate.require_export_parity
    export = _typed(new, "export", ExportMetrics)
    if isinstance(export, str):
        return Check(name, False, export, blocking=blocking)
    figures = (
        ("fp32 max |Δlogit|", export.fp32.max_abs_logit_diff, limits.max_abs_logit_diff, 1),
        ("int8 agreement", export.int8.agreement, limits.int8_min_agreement, -1),
        ("int8 macro-F1 drop", export.int8.macro_f1_drop, limits.int8_max_f1_drop, 1),
    )
    parts, failed = [], []
    for label, value, limit, sign in figures:
        ok = (value - limit) * sign <= EPS
        text = f"{label} {value:.4g} ({'max' if sign > 0 else 'min'} {limit:g})"
        parts.append(text)
        if not ok:
            failed.append(text)
    if failed:
        return Check(name, False, "outside the limits: " + "; ".join(failed), blocking=blocking)
    return Check(name, True, ", ".join(parts), blocking=blocking)


def check_latency(policy: Policy, new: Snapshot) -> Check | None:
    """The int8 graph's p95 latency at ``latency_batch_size`` is within budget."""
    cfg = policy.gate
    if cfg.max_int8_p95_ms is None:
        return None
    name = f"int8 p95 latency (batch {cfg.latency_batch_size})"
    export = _typed(new, "export", ExportMetrics)
    if isinstance(export, str):
        return Check(name, False, export)
    engines = export.latency_by_batch().get(cfg.latency_batch_size, {})
    p95 = engines["onnx_int8"].p95_ms if "onnx_int8" in engines else None
    if p95 is None:
        return Check(
            name,
            False,
            f"{sources()['export'].path} has no latency for batch size "
            f"{cfg.latency_batch_size}. Fix: add {cfg.latency_batch_size} to "
            "export.latency_batch_sizes, or set gate.latency_batch_size to one of them",
        )
    return Check(
        name,
        p95 <= cfg.max_int8_p95_ms,
        f"{p95:.2f} ms (budget {cfg.max_int8_p95_ms:g} ms)",
        value=p95,
        threshold=cfg.max_int8_p95_ms,
    )


def check_size(policy: Policy, new: Snapshot) -> Check | None:
    """The int8 graph's size is within budget."""
    cfg = policy.gate
    if cfg.max_int8_size_mb is None:
        return None
    name = "int8 model size"
    export = _typed(new, "export", ExportMetrics)
    if isinstance(export, str):
        return Check(name, False, export)
    size = export.int8.size_mb
    return Check(
        name,
        size <= cfg.max_int8_size_mb,
        f"{size:.1f} MB (budget {cfg.max_int8_size_mb:g} MB)",
        value=size,
        threshold=cfg.max_int8_size_mb,
    )


def _flag_key(flag: dict[str, Any]) -> tuple[str, str, str]:
    return (str(flag.get("family")), str(flag.get("class")), str(flag.get("slice")))


def _describe(flags: list[dict[str, Any]], shown: int = 3) -> str:
    text = "; ".join(
        f"{f.get('class')} in {f.get('family')}/{f.get('slice')} "
        f"(ratio {_num(f.get('ratio')) or 0.0:.2f})"
        for f in flags[:shown]
    )
    return text + (f"; and {len(flags) - shown} more" if len(flags) > shown else "")


def _judged_flags(report: Any, policy: Policy) -> list[dict[str, Any]]:
    """The four-fifths flags of a slices report under the policy's support and threshold."""
    slices = report.get("slices") if isinstance(report, dict) else None
    if not isinstance(slices, dict):
        raise ValueError("it has no per-slice entries")
    labels: list[str] = []
    for members in slices.values():
        for entry in members.values():
            labels += [lab for lab in entry.get("prediction_rates") or {} if lab not in labels]
    cfg = policy.slices
    _, flagged = disparity(
        slices, labels, min_support=cfg.min_support, threshold=cfg.disparity_threshold
    )
    return flagged


def check_disparity(  # noqa: PLR0911  one early verdict per fail_on_disparity mode and missing input
    policy: Policy, new: Snapshot, base: Snapshot
) -> Check:
    """Four-fifths flags of the slices stage, judged with the policy; ``fail_on_disparity`` gates.

    The flags are recomputed from the per-slice rates with the policy's ``min_support`` and
    ``disparity_threshold``, on both sides. ``new`` (the default) blocks only flags the base
    branch does not have, so a pull request may not add a disparity, while differences that real
    slices carry in their base rates (and the base model had) are shown, not blocking; ``any``
    blocks every flag; ``never`` blocks none.
    """
    name = "slice disparity"
    mode = policy.gate.fail_on_disparity
    blocking = mode != "never"
    typed = _typed(new, "slices", SlicesReport)
    if isinstance(typed, str):
        return Check(name, False, typed, blocking=blocking)
    report = typed.model_dump(mode="json", by_alias=True)  # the rates the flags are recomputed from
    try:
        flagged = _judged_flags(report, policy)
    except (ValueError, KeyError, TypeError) as err:
        return Check(
            name,
            False,
            f"{sources()['slices'].path} cannot be judged with min_support "
            f"{policy.slices.min_support}: {err}. Fix: keep slices.min_support at most the "
            "gate's and rerun `dvc repro slices`",
            blocking=blocking,
        )
    threshold = policy.slices.disparity_threshold
    if not flagged:
        return Check(
            name,
            True,
            f"no slice flagged by the four-fifths rule (ratio < {threshold:g})",
            blocking=blocking,
            value=0.0,
        )
    count = float(len(flagged))
    if mode != "new":
        return Check(
            name,
            False,
            f"{len(flagged)} flagged: {_describe(flagged)}",
            blocking=mode == "any",
            value=count,
        )
    base_report = base.json("slices")
    try:
        known_flags = None if base_report is None else _judged_flags(base_report, policy)
    except (ValueError, KeyError, TypeError):
        known_flags = list(base_report.get("flagged") or [])
    if known_flags is None:
        return Check(
            name,
            False,
            f"{len(flagged)} flagged, no slice metrics on {base.label} to compare "
            f"with (shown, not gated): {_describe(flagged)}",
            blocking=False,
            value=count,
        )
    known = {_flag_key(f) for f in known_flags}
    added = [f for f in flagged if _flag_key(f) not in known]
    if added:
        return Check(
            name,
            False,
            f"{len(added)} flagged that {base.label} does not have: {_describe(added)}",
            value=float(len(added)),
        )
    return Check(
        name,
        True,
        f"no new flag: the {len(flagged)} flagged are flagged on {base.label} too "
        f"({_describe(flagged)})",
        value=0.0,
    )


def check_drift(policy: Policy, new: Snapshot) -> Check:
    """The drift stage's columns judged with the policy's drift thresholds.

    Blocking only with ``fail_on_drift``.
    """
    name = "data drift"
    blocking = policy.gate.fail_on_drift
    summary = _typed(new, "drift", DriftSummary)
    if isinstance(summary, str):
        return Check(name, False, summary, blocking=blocking)
    columns = {name: column.model_dump(mode="json") for name, column in summary.columns.items()}
    if not columns:
        return Check(
            name,
            False,
            f"{sources()['drift'].path} has no per-column results: rerun `dvc repro drift`",
            blocking=blocking,
        )
    try:
        _, share, reasons = drift_verdict(columns, policy.drift)
    except (KeyError, TypeError, ValueError) as err:
        return Check(
            name,
            False,
            f"{sources()['drift'].path} is malformed ({err}): rerun `dvc repro drift`",
            blocking=blocking,
        )
    if not reasons:
        return Check(
            name,
            True,
            f"no drift detected (share of drifted columns {share:.2f})",
            blocking=blocking,
        )
    return Check(name, False, "; ".join(reasons), blocking=blocking)


def _replay(new: Snapshot, name: str) -> ReplaySummary | Check:
    """The replay the check ``name`` judges, or that check failed: no readable replay."""
    summary = _typed(new, "replay", ReplaySummary)
    return Check(name, False, summary) if isinstance(summary, str) else summary


def check_replay_changes(policy: Policy, new: Snapshot) -> Check | None:
    """At most ``max_replay_changed_share`` of production's recorded answers may change."""
    limit = policy.gate.max_replay_changed_share
    if limit is None:
        return None
    name = "changed production answers"
    summary = _replay(new, name)
    if isinstance(summary, Check):
        return summary
    share = summary.changed_share
    if share is None:
        return Check(
            name,
            False,
            f"none of the snapshot's {summary.requests} requests kept its text, so nothing was "
            "replayed: record texts (serve.traffic_log.text keep) or set "
            "max_replay_changed_share to null",
        )
    return Check(
        name,
        share <= limit + EPS,
        f"{share:.1%} of {summary.replayed} recorded answers change (at most {limit:.1%})",
        value=share,
        threshold=limit,
    )


def check_live_accuracy(policy: Policy, new: Snapshot) -> Check | None:
    """Accuracy on user-labelled requests may not fall more than allowed below production's."""
    limit = policy.gate.min_live_accuracy_delta
    if limit is None:
        return None
    name = "live accuracy vs production"
    summary = _replay(new, name)
    if isinstance(summary, Check):
        return summary
    scores = summary.feedback
    if scores is None or "candidate" not in scores.models:
        return Check(
            name,
            False,
            f"the snapshot has {summary.labelled} labelled request(s) and none with its text "
            "to replay: collect feedback (POST /feedback) or set min_live_accuracy_delta to null",
        )
    ci = scores.accuracy_delta_ci
    return Check(
        name,
        scores.accuracy_delta >= limit - EPS,
        f"accuracy {scores.models['candidate'].accuracy:.4f} vs production "
        f"{scores.models['production'].accuracy:.4f} on {scores.requests} labelled requests "
        f"(Δ {scores.accuracy_delta:+.4f}, interval [{ci.low:+.4f}, {ci.high:+.4f}]; "
        f"at least {limit:+g})",
        value=scores.accuracy_delta,
        threshold=limit,
    )


def evaluate_gate(policy: Policy, new: Snapshot, base: Snapshot) -> Verdict:
    """Run every check of the gate on the workspace (``new``) against ``base``.

    The behaviour check judges what :func:`textclf.report.behaviour.judge_behaviour` measured
    (``new.judged``): :func:`textclf.report.build.judge` runs it first.
    """
    from textclf.report.behaviour import check_behaviour  # it builds on Check, defined here
    from textclf.report.expectations import check_expectations  # likewise

    checks = [
        check_regression(policy, new, base),
        check_baseline(policy, new),
        check_expectations(new, base),
        check_parity(policy, new),
        check_latency(policy, new),
        check_size(policy, new),
        check_disparity(policy, new, base),
        check_drift(policy, new),
        check_replay_changes(policy, new),
        check_live_accuracy(policy, new),
        *check_behaviour(new, base),
    ]
    return Verdict([c for c in checks if c is not None], base.label, base.commit, policy.notes)
