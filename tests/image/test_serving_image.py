"""The serving image built by `make image`, run as the pod runs it, answers like the model.

`make test-image` builds ``localhost/textclf:<the workspace's release tag>`` first (the workspace's
own model: a new machine retrains, so this is not the committed tag). Figures (size, run to
ready, memory) are printed at the end of the run; the benchmarks report the same ones.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.image.conftest import FIGURES, workspace_image
from tests.image.containers import REPO, Podman
from tests.serving.live import REFUSED, post_oversized
from textclf.inference import OnnxClassifier
from textclf_dev.bench.image import Container, probe, run_image

pytestmark = pytest.mark.image

TEXTS = [
    "I love this phone",
    "the flight was delayed again",
    "meeting notes for monday",
    "not bad at all, honestly",
    "@united worst service ever http://t.co/x",
]
TRAINING_STACK = ("torch", "lightning", "transformers", "dvc", "evidently", "pandas", "sklearn")


@pytest.fixture(scope="session")
def serving_image(containers_env: dict[str, str]) -> str:
    """The image `make image` built from this workspace."""
    return workspace_image(containers_env, "textclf", "serving")


@pytest.fixture(scope="module")
def container(containers_env: dict[str, str], serving_image: str) -> Iterator[Container]:
    with run_image(containers_env, serving_image) as running:
        FIGURES["podman run to /readyz"] = f"{running.ready_seconds:.2f} s"
        yield running


def test_it_runs_as_the_non_root_user_of_the_pod(container: Container) -> None:
    assert container.exec("id", "-u").strip() == "1034"
    probe_write = "touch /home/bentoml/bento/x 2>/dev/null && echo writable || echo read-only"
    assert container.exec("sh", "-c", probe_write).strip() == "read-only"


def test_predictions_equal_the_in_process_onnx_classifier(container: Container) -> None:
    resp = httpx.post(f"{container.url}/predict", json={"texts": TEXTS}, timeout=60)
    assert resp.status_code == 200, resp.text + container.logs()[-2000:]
    served = resp.json()
    local = OnnxClassifier(REPO / "artifacts" / "onnx", "int8", threads=1)
    probs = local.predict_proba(TEXTS)
    assert [p["label"] for p in served] == [local.labels[int(row.argmax())] for row in probs]
    for answer, row in zip(served, probs, strict=True):
        assert answer["model_version"] == local.version
        for label, value in zip(local.labels, row, strict=True):
            assert abs(answer["probabilities"][label] - float(value)) < 1e-5


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"texts": [" "]}, 400, "texts[0] is empty"),
        ({"texts": []}, 400, "texts"),
        ({"texts": ["a"] * 10_000}, 400, "at most"),
        ({"text": "a"}, 400, "texts"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_fix(
    container: Container, body: dict[str, object], status: int, fragment: str
) -> None:
    resp = httpx.post(f"{container.url}/predict", json=body, timeout=60)
    assert resp.status_code == status and fragment in resp.text, resp.text[:500]


def test_a_body_that_is_not_json_is_refused(container: Container) -> None:
    resp = httpx.post(
        f"{container.url}/predict",
        content=b"texts=a",
        headers={"Content-Type": "text/plain"},
        timeout=60,
    )
    assert 400 <= resp.status_code < 500


def test_health_and_metrics_serve(container: Container) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        assert httpx.get(f"{container.url}{path}", timeout=10).status_code == 200
    httpx.post(f"{container.url}/predict", json={"texts": TEXTS[:1]}, timeout=60)
    metrics = httpx.get(f"{container.url}/metrics", timeout=10).text
    assert re.search(r'bentoml_service_request_total\{[^}]*endpoint="/predict"', metrics)


def test_hostile_traffic_is_refused_cheaply(container: Container) -> None:
    """A 20 MB body, a scan of random paths and a rejected text, against the pod's image."""
    answer, took = post_oversized(container.url, 20_000_000)
    FIGURES["20 MB body to 413 (container)"] = f"{took:.2f} s ({answer})"
    assert answer in REFUSED

    def series() -> set[str]:
        text = httpx.get(f"{container.url}/metrics", timeout=10).text
        return {ln.rsplit(" ", 1)[0] for ln in text.splitlines() if "endpoint=" in ln}

    before = series()
    with httpx.Client(base_url=container.url, timeout=10) as client:
        for i in range(200):
            assert client.get(f"/scan/{i}/{i * 7919 % 1000}").status_code == 404
    assert series() == before
    marker = f"private-{time.time_ns()}"
    refused = httpx.post(f"{container.url}/predict", json={"texts": [marker, " "]}, timeout=60)
    assert refused.status_code == 400
    logs = container.logs()
    assert "Rejected request on /predict [POST]" in logs and marker not in logs


def test_the_image_carries_no_training_stack(container: Container) -> None:
    found = container.exec(
        "python",
        "-c",
        "import importlib.util as u, sys; "
        f"print(' '.join(m for m in {list(TRAINING_STACK)!r} if u.find_spec(m)))",
    ).split()
    assert found == []
    shipped = container.exec("sh", "-c", "ls /home/bentoml/bento/src/textclf").split()
    assert "report" not in shipped and "stages" not in shipped and "release.py" not in shipped


def test_the_image_serves_on_uvloop_and_httptools(container: Container) -> None:
    """What uvicorn picks in the image is what `make bench` measured in the venv."""
    picked = container.exec(
        "python",
        "-c",
        "import importlib.util as u; "
        "from uvicorn.protocols.http.auto import AutoHTTPProtocol as p; "
        "print(p.__name__, bool(u.find_spec('uvloop')))",
    ).split()
    assert picked == ["HttpToolsProtocol", "True"], picked


def test_figures(containers_env: dict[str, str], serving_image: str) -> None:
    """Size, run to ready and memory after a small load (printed; `make bench` reports them)."""
    figures = probe(containers_env, serving_image, TEXTS, requests=50)
    FIGURES["image size"] = f"{figures['size_mb']:.0f} MB"
    FIGURES["podman run to /readyz (probe)"] = f"{figures['ready_seconds']:.2f} s"
    FIGURES[f"RSS after {figures['requests']} requests"] = f"{figures['rss_mib']:.0f} MiB"
    assert figures["size_mb"] > 0 and figures["rss_mib"] > 0


def test_a_wrong_hash_in_the_lock_fails_the_build(
    podman: Podman, tmp_path: Path, containers_env: dict[str, str]
) -> None:
    """Negative control of the hash lock: the image installs only files whose sha256 matches."""
    (tmp_path / "svc.py").write_text(
        textwrap.dedent(
            """\
            import bentoml

            @bentoml.service
            class Echo:
                @bentoml.api
                def echo(self, text: str) -> str:
                    return text
            """
        )
    )
    (tmp_path / "requirements.txt").write_text("six==1.17.0 --hash=sha256:" + "0" * 64 + "\n")
    (tmp_path / "Dockerfile.j2").write_text((REPO / "bento" / "Dockerfile.j2").read_text())
    (tmp_path / "bentofile.yaml").write_text(
        "service: svc:Echo\nname: hashcheck\ninclude: [svc.py]\n"
        "python:\n  requirements_txt: requirements.txt\n  lock_packages: false\n"
        "docker:\n  distro: debian\n  python_version: '3.11'\n"
        "  dockerfile_template: Dockerfile.j2\n"
    )
    bentoml = [sys.executable, "-m", "bentoml"]
    env = {
        **containers_env,
        "BENTOML_HOME": str(tmp_path / "home"),
        "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
    }
    build = subprocess.run(
        [*bentoml, "build", "--version", "v1", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    work = tmp_path / "work"
    (work / "tmp").mkdir(parents=True)
    containerize = subprocess.run(
        [
            *bentoml,
            "containerize",
            "--backend",
            "podman",
            "hashcheck:v1",
            "-t",
            "localhost/hashcheck:v1",
        ],
        cwd=work,
        env={
            **env,
            "TMPDIR": str(work / "tmp"),
            "CONTAINERS_CONF": containers_env["TEXTCLF_CONTAINERS_BUILD_CONF"],
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = containerize.stdout + containerize.stderr
    assert containerize.returncode != 0, output[-3000:]
    assert "hash" in output.lower() and "six" in output, output[-3000:]
