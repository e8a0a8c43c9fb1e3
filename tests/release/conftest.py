"""Temporary git + DVC repositories shaped like this one (tests/image adds a real registry)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from textclf.cli import app

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = "deploy/overlays/production/kustomization.yaml"
PRODUCTION_GPU = "deploy/overlays/production-gpu/kustomization.yaml"
#: Files of the real repository the release code reads (copied as they are).
STAGING = "deploy/overlays/staging/kustomization.yaml"
COPIED = (
    "bentofile.yaml",
    "bentofile.gpu.yaml",
    "requirements/serving.txt",
    "requirements/serving-gpu.txt",
    "serve.yaml",
    "bento/Dockerfile.j2",
    "images/drift.yaml",
    "images/drift.Containerfile",
    "requirements/drift.txt",
    PRODUCTION,
    PRODUCTION_GPU,
    STAGING,
)

#: A stand-in for the export and drift stages: the files bentofile.yaml includes, derived from
#: params.yaml's `export.seed` (model A: seed 1, model B: seed 2).
MAKE_MODEL = """\
import pathlib, sys, yaml
seed = yaml.safe_load(open("params.yaml"))["export"]["seed"]
onnx = pathlib.Path("artifacts/onnx")
onnx.mkdir(parents=True, exist_ok=True)
for name in ("model.onnx", "model.onnx.data", "model.int8.onnx", "tokenizer.json", "textclf.json"):
    (onnx / name).write_text(f"{name} of model {seed}\\n")
"""
MAKE_DRIFT = """\
import pathlib
drift = pathlib.Path("artifacts/drift")
drift.mkdir(parents=True, exist_ok=True)
model = pathlib.Path("artifacts/onnx/model.onnx").read_text()
(drift / "reference_profile.parquet").write_text("profile of " + model)
"""
MAKE_TRAIN = """\
import pathlib
pathlib.Path("artifacts/model").mkdir(parents=True, exist_ok=True)
pathlib.Path("artifacts/model/weights.bin").write_text("weights\\n")
"""
DVC_YAML = {
    "stages": {
        "train": {
            "cmd": "python make_train.py",
            "deps": ["make_train.py"],
            "outs": ["artifacts/model"],
        },
        "export": {
            "cmd": "python make_model.py",
            "deps": ["make_model.py", "artifacts/model"],
            "params": ["export"],
            "outs": ["artifacts/onnx"],
        },
        "drift": {
            "cmd": "python make_drift.py",
            "deps": ["make_drift.py", "artifacts/onnx"],
            "outs": ["artifacts/drift"],
        },
    }
}
#: A hand-written dvc.lock for tests that need no `dvc repro` (tags only, --no-status).
FAKE_LOCK = {
    "schema": "2.0",
    "stages": {
        "train": {
            "cmd": "python make_train.py",
            "outs": [{"path": "artifacts/model", "hash": "md5", "md5": "1" * 32 + ".dir"}],
        },
        "export": {
            "cmd": "python make_model.py",
            "deps": [{"path": "artifacts/model", "hash": "md5", "md5": "1" * 32 + ".dir"}],
            "outs": [{"path": "artifacts/onnx", "hash": "md5", "md5": "2" * 32 + ".dir"}],
        },
        "drift": {
            "cmd": "python make_drift.py",
            "outs": [{"path": "artifacts/drift", "hash": "md5", "md5": "3" * 32 + ".dir"}],
        },
    },
}


def shipped_sources(definition: str = "bentofile.yaml") -> list[str]:
    """The source files an image definition ships (its include entries under src/)."""
    spec = yaml.safe_load((REPO / definition).read_text(encoding="utf-8"))
    return [p for p in spec["include"] if p.startswith("src/")]


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` and return its stdout; fail the test with git's stderr."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def dvc(root: Path, *args: str) -> str:
    """Run dvc (this interpreter's) in ``root``."""
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True
    )
    assert proc.returncode == 0, f"dvc {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def release(root: Path, *args: str) -> Result:
    """``textclf release <args> --root <root>`` through the real CLI."""
    return CliRunner().invoke(app, ["release", *args, "--root", str(root)])


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def write_yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _skeleton(root: Path) -> None:
    """Git repo with this repository's bentofiles and overlays and a tiny textclf package."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    git(root, "config", "commit.gpgsign", "false")
    for rel in COPIED:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, root / rel)
    # The serving closure the bentofiles list (stand-in bytes), and code they do not ship.
    for rel in {*shipped_sources(), *shipped_sources("images/drift.yaml")}:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f'"""{rel}."""\n')
    (root / "src/textclf/serving/service.py").write_text("VERSION = 1\n")
    for rel in ("src/textclf/report/gate.py", "src/textclf/stages/train.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("THRESHOLD = 1\n")
    (root / "README.md").write_text("# demo\n")
    (root / "params.yaml").write_text("export:\n  seed: 1\n")
    (root / "make_train.py").write_text(MAKE_TRAIN)
    (root / "make_model.py").write_text(MAKE_MODEL)
    (root / "make_drift.py").write_text(MAKE_DRIFT)
    write_yaml(root / "dvc.yaml", DVC_YAML)


@pytest.fixture
def lock_repo(tmp_path: Path) -> Path:
    """A committed repo with a hand-written dvc.lock (no DVC run): for tag-only tests."""
    root = tmp_path / "repo"
    _skeleton(root)
    write_yaml(root / "dvc.lock", FAKE_LOCK)
    commit_all(root, "fake model")
    return root


@pytest.fixture(scope="session")
def _pipeline_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pipeline") / "repo"
    _skeleton(root)
    dvc(root, "init", "-q")
    dvc(root, "repro", "-q")
    commit_all(root, "model A")
    return root


@pytest.fixture
def pipeline_repo(_pipeline_template: Path, tmp_path: Path) -> Path:
    """A committed git + DVC repo after `dvc repro` of the stand-in pipeline (model A)."""
    root = tmp_path / "repo"
    shutil.copytree(_pipeline_template, root, symlinks=True)
    return root


# --------------------------------------------------------------------------- registry


def point_overlays_at(root: Path, host: str) -> str:
    """Rename the image repositories in the overlays to ones on the registry ``host``."""
    repository = f"{host}/your-org/gitops-text-classifier"
    for rel in (PRODUCTION, PRODUCTION_GPU, STAGING):
        path = root / rel
        path.write_text(
            path.read_text().replace("ghcr.io/your-org/gitops-text-classifier", repository)
        )
    return repository
