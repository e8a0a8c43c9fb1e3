"""Scale-out: `train.strategy: ddp` on 2 CPU processes (gloo) matches single-process training."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import tiny_params
from textclf import io
from textclf.paths import Paths

BIN = Path(sys.executable).parent


# The multi-node launch docs/training.md documents, on one node: torchrun starts the processes and
# sets the rank variables; Lightning reads them instead of spawning its own workers.
TORCHRUN = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", "-m", "textclf"]


def _run(cmd: list[str], cwd: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _train_and_evaluate(root: Path, train: dict, launcher: list[str]) -> dict:
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(train=train)))
    _run([str(BIN / "textclf"), "prepare"], root)
    _run([*launcher, "train"], root)
    _run([str(BIN / "textclf"), "evaluate"], root)
    return io.read_json(Paths(root).metrics)


def test_ddp_on_two_cpu_processes_matches_single_process(
    toy_root: Path, tmp_path: Path, tiny_backbone: Path
) -> None:
    """Same global batch (2 x 8 vs 16): both learn the toy task and agree within tolerance."""
    import shutil

    single_root = tmp_path / "single"
    shutil.copytree(toy_root, single_root, symlinks=True)
    single = _train_and_evaluate(single_root, {"batch_size": 16}, [str(BIN / "textclf")])
    ddp = _train_and_evaluate(
        toy_root,
        {"batch_size": 8, "strategy": "ddp", "devices": 2, "accelerator": "cpu"},
        TORCHRUN,
    )
    live = io.read_json(Paths(toy_root).train_reports / "metrics.json")
    assert live["run"]["world_size"] == 2
    assert single["macro_f1"] > 0.9 and ddp["macro_f1"] > 0.9
    assert abs(single["macro_f1"] - ddp["macro_f1"]) <= 0.05
    assert abs(single["accuracy"] - ddp["accuracy"]) <= 0.05
    # Only rank 0 wrote: one model directory, no leftovers from the other rank.
    assert sorted(p.name for p in (toy_root / "artifacts").iterdir()) == [
        "model",
        "predictions",
        "prepared",
    ]
