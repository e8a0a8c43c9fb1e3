"""The review runners' image: an ephemeral runner's `make install` downloads nothing.

`make test-image` builds it (`make runner-image`) from the real images/review-runner.Containerfile
and requirements/review-gpu.txt, on the local Debian stand-in for GitHub's runner image (this
machine reaches no container registry): the CUDA build of torch, onnxruntime-gpu and the rest of
the gpu and dev extras, about 3.5 GB from PyPI. These tests then run the review's install step
in it as the runner pod would (uid 1001) with no network at all, on a copy of this checkout.
Its push and pin go through a real registry on loopback, with a tiny image in its place.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.deploy.test_runners import CHECKS
from tests.image.conftest import FIGURES, Archive
from tests.image.containers import REPO, Podman, tail
from tests.release.conftest import release
from textclf.errors import ArtifactError
from textclf.release import runner
from textclf.release.registry import digest
from textclf_dev.bench.image import image_size

pytestmark = pytest.mark.image

INSTALL = "make install LOCK=requirements/review-gpu.txt"
# What the repro job then relies on: CUDA torch and ONNX Runtime, and the checkout's own textclf.
PROBE = (
    "import onnxruntime, torch, textclf; "
    "assert torch.version.cuda, 'not the CUDA build of torch'; "
    "assert 'CUDAExecutionProvider' in onnxruntime.get_available_providers(); "
    "assert textclf.__file__.startswith('/home/runner/_work/repo/src/'), textclf.__file__; "
    "print('torch', torch.__version__, 'cuda', torch.version.cuda, "
    "'onnxruntime', onnxruntime.__version__)"
)


@pytest.fixture(scope="module")
def runner_image(podman: Podman) -> str:
    """``localhost/textclf-runner:<r- tag of the workspace>``, built by `make test-image`."""
    image = f"localhost/textclf-runner:{runner.tag(REPO)}"
    try:
        size = image_size(podman.env, image)
    except ArtifactError as err:
        pytest.fail(f"{image} is not built ({err}). Fix: run `make test-image`.", pytrace=False)
    FIGURES["runner image size"] = f"{size / 1e9:.2f} GB"
    return image


def _checkout(tmp_path: Path, name: str, *, runner_owns: bool = True) -> Path:
    """The files a commit of this workspace holds (what the runner checks out), in a new git
    repository; owned by the runner's uid 1001 unless ``runner_owns`` is false."""
    dest = tmp_path / name
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    if runner_owns:
        subprocess.run(["chown", "-R", "1001:1001", str(dest)], check=True)
    return dest


def _offline(
    podman: Podman, image: str, checkout: Path, script: str
) -> subprocess.CompletedProcess[str]:
    """``script`` in ``image`` as the runner (uid 1001) in the checkout, with no network."""
    return podman(
        "run", "--rm", "--network", "none", "--user", "1001:1001",
        "--env", "PIP_RETRIES=0", "--env", "PIP_TIMEOUT=5",
        "--volume", f"{checkout}:/home/runner/_work/repo",
        "--workdir", "/home/runner/_work/repo",
        image, "bash", "-euo", "pipefail", "-c", script,
        check=False, timeout=900,
    )  # fmt: skip


def test_the_review_install_needs_no_network(
    podman: Podman, runner_image: str, tmp_path: Path
) -> None:
    checkout = _checkout(tmp_path, "repo")
    start = time.monotonic()
    script = f'id -u; {INSTALL}; "$TEXTCLF_VENV/bin/python" -c "{PROBE}"'
    proc = _offline(podman, runner_image, checkout, script)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, tail(proc.stdout + proc.stderr)
    lines = proc.stdout.split()
    assert lines[0] == "1001", "the runner's install must not need root"
    assert "cuda" in proc.stdout, proc.stdout
    FIGURES["runner install, no network"] = f"{seconds:.1f} s"


def test_a_lock_the_image_does_not_hold_is_downloaded_so_offline_it_fails(
    podman: Podman, runner_image: str, tmp_path: Path
) -> None:
    """The negative control: the offline install above succeeded because nothing was missing."""
    checkout = _checkout(tmp_path, "changed")
    lock = checkout / runner.LOCK
    text = lock.read_text(encoding="utf-8")
    pinned = re.search(r"^wheel==(\S+) ", text, re.MULTILINE)
    assert pinned, f"{runner.LOCK} pins no wheel"
    lock.write_text(text.replace(f"wheel=={pinned.group(1)} ", "wheel==0.45.1 ", 1), "utf-8")
    proc = _offline(podman, runner_image, checkout, INSTALL)
    assert proc.returncode != 0
    assert "wheel==0.45.1" in proc.stdout + proc.stderr, tail(proc.stdout + proc.stderr)


def test_push_and_pin_write_tag_and_registry_digest_into_values(
    registry: str, archive: Archive, env: dict[str, str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    root = _checkout(tmp_path, "pin", runner_owns=False)
    values = root / runner.VALUES
    before = values.read_text(encoding="utf-8")
    repository = f"{registry}/your-org/gitops-text-classifier-runner"

    missing = release(root, "runner-pin", "--repository", repository)
    assert missing.exit_code == 2 and "runner-image.yml" in missing.stderr, missing.output
    assert values.read_text(encoding="utf-8") == before, "nothing written on failure"

    image = archive("runner-a")
    pushed = release(root, "runner-push", str(image), "--repository", repository)
    assert pushed.exit_code == 0, pushed.output
    ref = f"{repository}:{runner.tag(root)}"
    found = digest(ref, env)
    assert found and pushed.stdout.strip() == f"pushed {ref}@{found}"
    again = release(root, "runner-push", str(image), "--repository", repository)
    assert again.exit_code == 0 and again.stdout.startswith("already there:")
    moved = release(root, "runner-push", str(archive("runner-b")), "--repository", repository)
    assert moved.exit_code == 2 and "refusing to move it" in moved.stderr
    assert digest(ref, env) == found, "the tag still names the first image"

    pinned = release(root, "runner-pin", "--repository", repository)
    assert pinned.exit_code == 0, pinned.output
    assert runner.pinned(root) == f"{ref}@{found}"
    after = values.read_text(encoding="utf-8")
    changed = [
        (old, new)
        for old, new in zip(before.splitlines(), after.splitlines(), strict=True)
        if old != new
    ]
    assert len(changed) == 1 and changed[0][1].strip() == f"image: {ref}@{found}", changed
    doc = yaml.safe_load(after)
    assert [name for name, check in CHECKS.items() if check(doc)] == []
    assert release(root, "runner-pin", "--repository", repository).stdout.startswith(
        "already pinned:"
    )
