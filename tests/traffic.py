"""Recorded-traffic helpers shared by the drift, snapshot and monitor tests.

Synthetic data only (toy texts, Dirichlet probabilities): no model is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textclf.config.drift import DriftParams
from textclf.monitoring.drift import build_profile, save_reference_profile
from textclf_dev.toy import TOY_LABELS, toy_frame


def toy_probs(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Probabilities that favour each row's toy label (a confident, mostly right model)."""
    rng = np.random.default_rng(seed)
    alpha = np.ones((len(frame), len(TOY_LABELS)))
    alpha[np.arange(len(frame)), frame["label"].map(TOY_LABELS.index).to_numpy()] = 8.0
    return np.stack([rng.dirichlet(a) for a in alpha])


def toy_reference(path: Path, params: DriftParams, model_version: str = "m1") -> Path:
    """A reference profile of 1,500 toy texts (five frames: their "#<i>" suffixes span what the
    traffic's do), saved with ``params`` as the drift stage saves its own."""
    frame = pd.concat([toy_frame(300, seed=s) for s in range(10, 15)], ignore_index=True)
    profile = build_profile(frame["text"].tolist(), toy_probs(frame, 1), TOY_LABELS)
    meta = {"model_version": model_version, "labels": TOY_LABELS, "params": params.model_dump()}
    return save_reference_profile(profile, path, meta)


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]], tail: bytes = b"") -> Path:
    """One JSON object per line, then ``tail`` (raw bytes: torn or garbage lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
        fh.write(tail)
    return path


def drift_check_process(
    traffic: Path, reference: Path, *extra: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m textclf.monitoring.check``, the drift image's entry point, in a process of its
    own: prometheus_client then never loads into the test process, where it would fix its
    single-process mode before the service tests set PROMETHEUS_MULTIPROC_DIR. A Pushgateway
    set in the caller's shell is not pushed to."""
    clean = {
        k: v for k, v in os.environ.items() if k not in ("TEXTCLF_PUSHGATEWAY", "POD_NAMESPACE")
    }
    return subprocess.run(
        [sys.executable, "-m", "textclf.monitoring.check",
         "--traffic-dir", str(traffic), "--reference", str(reference), *extra],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
