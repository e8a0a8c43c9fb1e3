"""The thresholds a gate run judges with: the base revision's, so a PR cannot loosen its own gate.

The policy is ``gate.yaml`` plus the limits the checks read from other ``params.yaml`` sections
(export parity, slices, drift). Each is taken from the base revision; only where the base has no
gate at all (the first model on a branch) does the workspace's own apply, and the review says so.
What a PR changes in them is listed at the top of its review: it takes effect after the merge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textclf.config.base import ModelT, validate
from textclf.config.drift import DriftParams
from textclf.config.export import ExportParams
from textclf.config.gate import GateParams
from textclf.config.slices import SlicesParams
from textclf.errors import ConfigError
from textclf.report.sources import Snapshot, data_md5, flatten, sources

#: The keys of other params sections that gate checks read, by section. Thresholds are applied
#: from the base; the slice and drift definitions are listed when a PR changes them.
LIMIT_KEYS: dict[str, tuple[str, ...]] = {
    "export": ("max_abs_logit_diff", "int8_min_agreement", "int8_max_f1_drop"),
    "slices": (
        "families",
        "length_unit",
        "length_edges",
        "negation_words",
        "min_support",
        "disparity_threshold",
    ),
    "drift": (
        "drift_share",
        "critical_columns",
        "num_method",
        "cat_method",
        "num_threshold",
        "cat_threshold",
    ),
}
#: The params that decide which rows are in the test split: change one and the PR's test
#: metrics are measured on other texts than the base's.
SPLIT_KEYS: dict[str, tuple[str, ...]] = {
    "data": ("path", "format", "encoding", "text_column", "label_column", "labels"),
    "prepare": ("seed", "test_size", "val_size", "conflicting_labels"),
}
TEST_SPLIT = "artifacts/prepared/test.parquet"


@dataclass(frozen=True)
class Policy:
    """Every threshold of one gate run, and whose they are."""

    gate: GateParams
    export: ExportParams
    slices: SlicesParams
    drift: DriftParams
    #: Why a part of the policy is not the base's (empty when all of it is).
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """One key whose value differs between the base and the workspace."""

    key: str
    base: Any
    new: Any


def _gate_raw(snapshot: Snapshot) -> tuple[dict[str, Any] | None, str]:
    """The gate keys of a snapshot and the file they came from (None when it has no gate).

    Revisions from before ``gate.yaml`` kept the gate as the ``gate`` section of params.yaml.
    """
    gate = snapshot.yaml("gate")
    if isinstance(gate, dict):
        return gate, sources()["gate"].path
    params = snapshot.yaml("params")
    if isinstance(params, dict) and isinstance(params.get("gate"), dict):
        return params["gate"], f"{sources()['params'].path} (section gate)"
    return None, sources()["gate"].path


def _limits_raw(snapshot: Snapshot, section: str) -> dict[str, Any] | None:
    params = snapshot.yaml("params")
    if not isinstance(params, dict):
        return None
    raw = params.get(section)
    raw = raw if isinstance(raw, dict) else {}
    return {k: raw[k] for k in LIMIT_KEYS[section] if k in raw}


def policy_for(base: Snapshot, new: Snapshot) -> Policy:
    """The policy a review of ``new`` against ``base`` applies (the base's, where it has one)."""
    notes: list[str] = []
    raw, where = _gate_raw(base)
    gate_source = f"{base.label}: {where}"
    if raw is None:
        raw, where = _gate_raw(new)
        gate_source = f"workspace: {where}"
        if raw is None:
            raise ConfigError(
                f"neither {base.label} nor the workspace has {sources()['gate'].path}. Fix: "
                "restore it (`git checkout origin/main -- gate.yaml`): the gate needs thresholds."
            )
        notes.append(
            f"first gate: {base.label} has no {sources()['gate'].path}, so this PR's own "
            "thresholds apply (later PRs are judged with the merged ones)"
        )
    gate = validate(GateParams, raw, gate_source, what="gate keys")
    side = base if isinstance(base.yaml("params"), dict) else new
    if side is new:
        notes.append(
            f"{base.label} has no {sources()['params'].path}: this PR's export, slice and "
            "drift limits apply"
        )

    def limits(model: type[ModelT], section: str) -> ModelT:
        source = f"{side.label}: {sources()['params'].path} (section {section})"
        return validate(model, _limits_raw(side, section) or {}, source)

    return Policy(
        gate,
        limits(ExportParams, "export"),
        limits(SlicesParams, "slices"),
        limits(DriftParams, "drift"),
        tuple(notes),
    )


def _diff(old: Mapping[str, Any], cur: Mapping[str, Any], prefix: str) -> list[Change]:
    return [
        Change(f"{prefix}{key}", old.get(key), cur.get(key))
        for key in sorted(set(old) | set(cur), key=str)
        if old.get(key) != cur.get(key)
    ]


def gate_changes(base: Snapshot, new: Snapshot) -> list[Change]:
    """The gate thresholds, gated limits and data expectations the workspace changes (they
    apply after the merge)."""
    from textclf.report.expectations import expectation_changes  # it builds on Change

    old_gate, _ = _gate_raw(base)
    new_gate, _ = _gate_raw(new)
    if old_gate is None:
        return expectation_changes(base, new)
    changes = _diff(flatten(old_gate), flatten(new_gate or {}), "gate.yaml: ")
    for section in LIMIT_KEYS:
        old, cur = _limits_raw(base, section), _limits_raw(new, section)
        if old is not None:
            changes += _diff(old, cur or {}, f"params.yaml: {section}.")
    return changes + expectation_changes(base, new)


def _test_split_md5(snapshot: Snapshot) -> str | None:
    lock = snapshot.yaml("dvc_lock")
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for entry in (stages or {}).values():
        for dep in (entry or {}).get("deps") or []:
            if isinstance(dep, dict) and dep.get("path") == TEST_SPLIT and dep.get("md5"):
                return str(dep["md5"])
    return None


def _section(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    return value if isinstance(value, dict) else {}


def split_changes(base: Snapshot, new: Snapshot) -> list[Change]:
    """What makes the workspace's test split differ from the base's: data, split params, bytes.

    Empty when the base has no params to compare with (a first model).
    """
    old_params, new_params = base.yaml("params"), new.yaml("params")
    if not isinstance(old_params, dict):
        return []
    new_params = new_params if isinstance(new_params, dict) else {}
    changes = []
    old_data, new_data = data_md5(base), data_md5(new)
    if old_data and old_data != new_data:
        changes.append(Change(f"{sources()['data_dvc'].path}: md5", old_data, new_data))
    for section, keys in SPLIT_KEYS.items():
        old = _section(old_params, section)
        cur = _section(new_params, section)
        changes += _diff(
            {k: old[k] for k in keys if k in old},
            {k: cur[k] for k in keys if k in cur},
            f"params.yaml: {section}.",
        )
    old_split, new_split = _test_split_md5(base), _test_split_md5(new)
    if old_split and new_split and old_split != new_split:
        changes.append(Change(f"{TEST_SPLIT} (dvc.lock md5)", old_split, new_split))
    return changes
