"""The promotion gate: one function decides, ``textclf gate`` and the PR report both show it.

Every check reads a file a stage wrote. A file that is missing fails its check with the file and
the fix (``dvc repro``), so a stage that did not run can never let a model through by omission.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from textclf.config import GateParams
from textclf.report.sources import Snapshot, sources

EPS = 1e-12


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
            "checks": [asdict(c) for c in self.checks],
            "failures": [f"{c.name}: {c.detail}" for c in self.failures],
            "warnings": [f"{c.name}: {c.detail}" for c in self.warnings],
        }


def unavailable(snapshot: Snapshot, key: str) -> str:
    """Why ``key`` cannot be read: missing (with the fix) or unreadable."""
    src = sources()[key]
    if snapshot.text(key) is None:
        return f"missing {src.path}: run `dvc repro` (the {src.stage} stage writes it)"
    return f"unreadable {src.path}: rerun `dvc repro {src.stage}` to rewrite it"


def _get(tree: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def check_regression(cfg: GateParams, new: Snapshot, base: Snapshot) -> Check:
    """Test macro-F1 may not fall more than ``max_macro_f1_drop`` below the base's."""
    name = "macro-F1 vs base"
    metrics = new.json("evaluate")
    current = _num(_get(metrics, "macro_f1"))
    if current is None:
        detail = (
            unavailable(new, "evaluate")
            if metrics is None
            else f"{sources()['evaluate'].path} has no macro_f1: rerun `dvc repro evaluate`"
        )
        return Check(name, False, detail)
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


def check_baseline(cfg: GateParams, new: Snapshot) -> Check:
    """Test macro-F1 must beat the TF-IDF baseline by ``min_macro_f1_over_baseline``."""
    name = "macro-F1 over TF-IDF baseline"
    metrics = new.json("evaluate")
    if metrics is None:
        return Check(name, False, unavailable(new, "evaluate"))
    current, baseline = _num(metrics.get("macro_f1")), _num(_get(metrics, "baseline", "macro_f1"))
    if current is None or baseline is None:
        return Check(
            name,
            False,
            f"{sources()['evaluate'].path} has no macro_f1 or "
            "baseline.macro_f1: rerun `dvc repro evaluate`",
        )
    margin = current - baseline
    return Check(
        name,
        margin >= cfg.min_macro_f1_over_baseline - EPS,
        f"macro-F1 {current:.4f} vs baseline {baseline:.4f} (margin {margin:+.4f}; "
        f"required {cfg.min_macro_f1_over_baseline:+g})",
        value=margin,
        threshold=cfg.min_macro_f1_over_baseline,
    )


def check_parity(cfg: GateParams, new: Snapshot) -> Check:
    """The export stage's torch-vs-ONNX parity gates passed."""
    name = "export parity"
    export = new.json("export")
    if export is None:
        return Check(name, False, unavailable(new, "export"), blocking=cfg.require_export_parity)
    passed = _get(export, "gates", "passed") is True
    fp32, int8 = export.get("fp32") or {}, export.get("int8") or {}
    parts = []
    if _num(fp32.get("max_abs_logit_diff")) is not None:
        parts.append(f"fp32 max |Δlogit| {fp32['max_abs_logit_diff']:.2g}")
    if _num(int8.get("agreement")) is not None:
        parts.append(f"int8 agreement {int8['agreement']:.4f}")
    if _num(int8.get("macro_f1_drop")) is not None:
        parts.append(f"int8 macro-F1 drop {int8['macro_f1_drop']:+.4f}")
    detail = ", ".join(parts) or "no parity figures"
    if not passed:
        detail = f"export gates did not pass ({detail}): see `dvc repro export`"
    return Check(name, passed, detail, blocking=cfg.require_export_parity)


def check_latency(cfg: GateParams, new: Snapshot) -> Check | None:
    """The int8 graph's p95 latency at ``latency_batch_size`` is within budget."""
    if cfg.max_int8_p95_ms is None:
        return None
    name = f"int8 p95 latency (batch {cfg.latency_batch_size})"
    export = new.json("export")
    if export is None:
        return Check(name, False, unavailable(new, "export"))
    p95 = _num(_get(export, "latency", f"batch_{cfg.latency_batch_size}", "onnx_int8", "p95_ms"))
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


def check_size(cfg: GateParams, new: Snapshot) -> Check | None:
    """The int8 graph's size is within budget."""
    if cfg.max_int8_size_mb is None:
        return None
    name = "int8 model size"
    export = new.json("export")
    if export is None:
        return Check(name, False, unavailable(new, "export"))
    size = _num(_get(export, "int8", "size_mb"))
    if size is None:
        return Check(
            name, False, f"{sources()['export'].path} has no int8.size_mb: rerun `dvc repro export`"
        )
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


def check_disparity(cfg: GateParams, new: Snapshot, base: Snapshot) -> Check:
    """Four-fifths flags of the slices stage, gated by ``fail_on_disparity``.

    ``new`` (the default) blocks only flags the base branch does not have, so a pull request may
    not add a disparity, while differences that real slices carry in their base rates (and the
    base model had) are shown, not blocking; ``any`` blocks every flag; ``never`` blocks none.
    """
    name = "slice disparity"
    mode = cfg.fail_on_disparity
    report = new.json("slices")
    if report is None:
        return Check(name, False, unavailable(new, "slices"), blocking=mode != "never")
    flagged = report.get("flagged") or []
    if not flagged:
        return Check(
            name,
            True,
            "no slice flagged by the four-fifths rule",
            blocking=mode != "never",
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
    if base_report is None:
        return Check(
            name,
            False,
            f"{len(flagged)} flagged, no slice metrics on {base.label} to compare "
            f"with (shown, not gated): {_describe(flagged)}",
            blocking=False,
            value=count,
        )
    known = {_flag_key(f) for f in base_report.get("flagged") or []}
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


def check_drift(cfg: GateParams, new: Snapshot) -> Check:
    """The drift stage found no drift (blocking only with ``fail_on_drift``)."""
    name = "data drift"
    summary = new.json("drift")
    if summary is None:
        return Check(name, False, unavailable(new, "drift"), blocking=cfg.fail_on_drift)
    if not summary.get("drift_detected"):
        share = _num(summary.get("share_drifted"))
        extra = f" (share of drifted columns {share:.2f})" if share is not None else ""
        return Check(name, True, f"no drift detected{extra}", blocking=cfg.fail_on_drift)
    reasons = "; ".join(str(r) for r in summary.get("reasons") or []) or "drift detected"
    return Check(name, False, reasons, blocking=cfg.fail_on_drift)


def evaluate_gate(cfg: GateParams, new: Snapshot, base: Snapshot) -> Verdict:
    """Run every check of the gate on the workspace (``new``) against ``base``."""
    checks = [
        check_regression(cfg, new, base),
        check_baseline(cfg, new),
        check_parity(cfg, new),
        check_latency(cfg, new),
        check_size(cfg, new),
        check_disparity(cfg, new, base),
        check_drift(cfg, new),
    ]
    return Verdict([c for c in checks if c is not None], base.label, base.commit)
