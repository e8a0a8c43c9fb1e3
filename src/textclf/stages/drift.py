"""drift: Evidently drift of the current split against the reference sample, through the ONNX model.

Both sides are predicted by the same exported graph (``drift.variant``, the one serving runs), so
a confidence or prediction shift is the data's, not an engine difference. The reference side is
also saved as ``artifacts/drift/reference_profile.parquet``: what ``textclf drift-check`` compares
recorded production traffic against.
"""

from __future__ import annotations

from typing import Any, Protocol

from textclf.config.drift import DriftParams
from textclf.data.prepared import read_labels, read_split
from textclf.monitoring.drift import build_profile, compare, save_reference_profile, write_outputs
from textclf.outputs.drift import DriftSummary
from textclf.paths import Paths


class Inputs(Protocol):
    """The params sections this stage reads: `dvc.yaml` lists the same (a test checks)."""

    @property
    def drift(self) -> DriftParams: ...


def run(params: Inputs, paths: Paths) -> dict[str, Any]:
    """Compare reference and current data; write the verdict, the HTML and the reference profile."""
    from textclf.inference import load_for_labels

    cfg = params.drift
    labels = read_labels(paths)
    model = load_for_labels(paths.onnx_dir, cfg.variant, labels, threads=cfg.threads)
    profiles = {}
    for name in ("reference", cfg.current):
        split = read_split(paths, name)
        texts = split["text"].tolist()
        profile = build_profile(
            texts, model.predict_proba(texts, cfg.batch_size), labels, split["label"].tolist()
        )
        profile.insert(0, "row", split["row"].to_numpy())
        profiles[name] = profile
    summary, snapshot = compare(profiles["reference"], profiles[cfg.current], cfg)
    summary["reference"] = {
        "source": str(paths.split("reference").relative_to(paths.root)),
        "profile": str(paths.drift_reference_profile.relative_to(paths.root)),
    }
    summary["current"] = {"source": str(paths.split(cfg.current).relative_to(paths.root))}
    summary["model"] = {"variant": cfg.variant, "version": model.version}
    save_reference_profile(
        profiles["reference"],
        paths.drift_reference_profile,
        {
            "model_version": model.version,
            "variant": cfg.variant,
            "labels": labels,
            "params": cfg.model_dump(),
        },
    )
    DriftSummary.model_validate(summary)  # a malformed summary fails here, before any write
    write_outputs(summary, snapshot, paths.drift_summary, paths.drift_html)
    return summary
