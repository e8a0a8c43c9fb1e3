"""The bentos of bentofile.yaml and bentofile.gpu.yaml: contents, Dockerfiles, served by path.

Both are built (``bentoml build``, BENTOML_HOME in a temporary directory) from a copy of the
files they include, with the tiny export at artifacts/onnx, so the checkout's artifacts/ (which
the pipeline may be rewriting) is never read.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.exported import TinyExport
from tests.serving.live import BENTOML, server_env, serving
from textclf.inference import model_version

REPO = Path(__file__).resolve().parents[2]
COPIED = [
    "bentofile.yaml",
    "bentofile.gpu.yaml",
    "bento/Dockerfile.j2",
    "requirements/serving.txt",
    "requirements/serving-gpu.txt",
]
# The copy's serve.yaml differs from the checkout's here, to tell which one the bento serves.
MAX_TEXTS = 5
TRAINING_STACK = ("torch", "lightning", "transformers", "dvc")
# uvicorn (loop="auto", http="auto", as BentoML runs it) picks these when they are importable.
HTTP_STACK = ("uvloop", "httptools")
SERVING_LOCKS = ("requirements/serving.txt", "requirements/serving-gpu.txt")


@dataclass(frozen=True)
class Bentos:
    """The two built bentos and the BentoML home that holds them."""

    home: Path
    cpu: Path
    gpu: Path


def _copy_repo(root: Path, exported: TinyExport) -> None:
    """The whole source tree (the bentofiles pick the serving closure), serve.yaml, the export."""
    shutil.copytree(
        REPO / "src" / "textclf",
        root / "src" / "textclf",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    for name in COPIED:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, root / name)
    serve = yaml.safe_load((REPO / "serve.yaml").read_text("utf-8"))
    (root / "serve.yaml").write_text(
        yaml.safe_dump({**serve, "max_batch_size": MAX_TEXTS}), "utf-8"
    )
    shutil.copytree(exported.onnx_dir, root / "artifacts" / "onnx")


def _build(root: Path, home: Path, bentofile: str, version: str) -> Path:
    # `bentoml build` imports the service to record its API schema; PYTHONPATH makes that the
    # copy (the venv's editable install would import the checkout, with the checkout's params).
    env = server_env({"BENTOML_HOME": str(home), "PYTHONPATH": str(root / "src")})
    result = subprocess.run(
        [str(BENTOML), "build", "-f", bentofile, "--version", version, "."],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    path = home / "bentos" / "textclf" / version
    assert (path / "bento.yaml").is_file(), result.stdout[-3000:]
    return path


@pytest.fixture(scope="module")
def bentos(tmp_path_factory: pytest.TempPathFactory, exported: TinyExport) -> Bentos:
    """Both bentos, built from a copy of the repository files with the tiny export."""
    tmp = tmp_path_factory.mktemp("bento")
    root, home = tmp / "repo", tmp / "bentoml-home"
    _copy_repo(root, exported)
    return Bentos(
        home,
        _build(root, home, "bentofile.yaml", "test-cpu"),
        _build(root, home, "bentofile.gpu.yaml", "test-gpu"),
    )


def _requirements(bento: Path) -> list[str]:
    lines = (bento / "env" / "python" / "requirements.txt").read_text("utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _package(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def _dockerfile(bento: Path) -> list[str]:
    text = (bento / "env" / "docker" / "Dockerfile").read_text("utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _check_non_root(lines: list[str]) -> None:
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), users
    last_user = max(i for i, ln in enumerate(lines) if ln.startswith("USER "))
    assert any(ln.startswith("ENTRYPOINT") for ln in lines[last_user:])
    # The user is created with a fixed non-zero uid (what runAsNonRoot checks).
    uid = [ln for ln in lines if ln.startswith("ARG BENTO_USER_UID=")]
    assert uid and int(uid[0].split("=", 1)[1]) > 0


def _pinned(lock: str) -> set[str]:
    lines = (REPO / lock).read_text("utf-8").splitlines()
    return {_package(ln) for ln in lines if ln and not ln.startswith((" ", "#"))}


def test_the_images_serve_on_the_http_stack_make_bench_measures() -> None:
    """`make bench` serves from the venv: without these pins the images would run asyncio + h11."""
    for lock in SERVING_LOCKS:
        pinned = _pinned(lock)
        assert {"bentoml", "onnxruntime"} & pinned, f"{lock} is not a serving lock"  # control
        missing = [m for m in HTTP_STACK if m not in pinned]
        assert not missing, f"{lock} does not pin {missing}: add them to its .in and `make lock`"
    absent = [m for m in HTTP_STACK if importlib.util.find_spec(m) is None]
    assert not absent, f"the venv lacks {absent}: `make install` (pyproject.toml requires them)"


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
def test_the_bento_holds_the_model_and_no_training_stack(bentos: Bentos, flavour: str) -> None:
    bento: Path = getattr(bentos, flavour)
    src = bento / "src"
    for name in (
        "model.onnx",
        "model.onnx.data",
        "model.int8.onnx",
        "tokenizer.json",
        "textclf.json",
    ):
        assert (src / "artifacts" / "onnx" / name).is_file(), name
    assert (src / "serve.yaml").is_file() and not (src / "params.yaml").exists()
    assert (src / "textclf" / "serving" / "service.py").is_file()
    for absent in ("report", "stages", "bench", "models", "release.py", "monitoring", "cli.py"):
        assert not (src / "textclf" / absent).exists(), f"{absent} is not serving code"
    assert not (src / "artifacts" / "drift").exists()
    assert not list(src.rglob("__pycache__"))
    packages = {_package(r) for r in _requirements(bento)}
    assert not packages & set(TRAINING_STACK), packages
    assert set(HTTP_STACK) <= packages, packages
    meta = yaml.safe_load((bento / "bento.yaml").read_text("utf-8"))
    assert (meta["name"], meta["service"]) == ("textclf", "textclf.serving.service:TextClassifier")
    # The API schema was generated from the bento's own serve.yaml.
    routes = {r["route"]: r["input"]["properties"] for r in meta["schema"]["routes"]}
    assert set(routes) == {"/predict", "/feedback"}
    assert routes["/predict"]["texts"]["maxItems"] == MAX_TEXTS
    assert routes["/feedback"]["items"]["maxItems"] == MAX_TEXTS  # serve.max_batch_size both


def test_cpu_dockerfile_runs_onnxruntime_as_non_root(bentos: Bentos) -> None:
    lines = _dockerfile(bentos.cpu)
    _check_non_root(lines)
    assert lines[0].startswith("FROM python:3.11"), lines[0]
    packages = [_package(r) for r in _requirements(bentos.cpu)]
    assert "onnxruntime" in packages
    assert "onnxruntime-gpu" not in packages


def test_gpu_dockerfile_runs_onnxruntime_gpu_on_cuda_as_non_root(bentos: Bentos) -> None:
    lines = _dockerfile(bentos.gpu)
    _check_non_root(lines)
    base = next(ln for ln in lines if ln.startswith("FROM "))
    assert re.match(r"FROM nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-", base), base
    packages = [_package(r) for r in _requirements(bentos.gpu)]
    assert "onnxruntime-gpu" in packages
    assert "onnxruntime" not in packages  # the two wheels cannot be installed side by side
    assert "ENV TEXTCLF_ONNX_VARIANT=$TEXTCLF_ONNX_VARIANT" in lines
    assert "ARG TEXTCLF_ONNX_VARIANT=fp32" in lines


def test_the_built_bento_serves_its_own_model_and_params(
    bentos: Bentos, exported: TinyExport, tmp_path: Path
) -> None:
    """``bentoml serve <bento path>`` from elsewhere: no TEXTCLF_* variables, nothing from here."""
    env = {"BENTOML_HOME": str(bentos.home)}
    with serving(str(bentos.cpu), env, cwd=tmp_path, log=tmp_path / "serve.log") as server:
        resp = httpx.post(
            f"{server.url}/predict", json={"texts": ["I love this phone"]}, timeout=60
        )
        assert resp.status_code == 200, resp.text + server.log()
        # int8 (the params default) from the bento's artifacts/onnx.
        assert resp.json()[0]["model_version"] == model_version(exported.onnx_dir, "int8")
        too_many = httpx.post(
            f"{server.url}/predict", json={"texts": ["a"] * (MAX_TEXTS + 1)}, timeout=60
        )
        assert too_many.status_code == 400
        assert f"at most {MAX_TEXTS} are accepted" in too_many.text
        for path in ("/healthz", "/livez", "/readyz"):
            assert httpx.get(f"{server.url}{path}", timeout=10).status_code == 200
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert re.search(
            r'bentoml_service_request_total\{[^}]*endpoint="/predict"[^}]*'
            r'service_name="textclf"[^}]*service_version="test-cpu"',
            metrics,
        )
