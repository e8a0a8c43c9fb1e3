"""`release verify-archive`: the bytes inside a real image, against dvc.lock and the commit.

The review pushes images that a job running pull-request code built; the pushing job and the
release open them first. Each negative control builds on the real serving image and changes one
thing a build script could sneak in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.image.conftest import image_name
from tests.image.containers import REPO, Podman
from textclf.errors import ReleaseError
from textclf.release.archive import verify_archive
from textclf.release.tag import compute

pytestmark = pytest.mark.image

SRC = "/home/bentoml/bento/src"
Save = Callable[[str], Path]


@pytest.fixture
def save(podman: Podman, tmp_path: Path) -> Save:
    def run(image: str) -> Path:
        path = tmp_path / f"{image.rsplit('/', 1)[1].replace(':', '-')}.tar"
        podman("save", "--format", "oci-archive", "--output", str(path), image, timeout=600)
        return path

    return run


def _built(name: str, key: str) -> str:
    return f"localhost/{name}:{compute(REPO, image=key, verify=False).tag}"


def test_the_serving_and_drift_images_ship_what_dvc_lock_and_the_commit_name(
    save: Save,
) -> None:
    checked = verify_archive(REPO, "cpu", save(_built("textclf", "serving")))
    assert checked.model_files == 5 and checked.files > checked.model_files
    drift = verify_archive(REPO, "drift", save(_built("textclf-drift", "drift")))
    assert drift.model_files == 1


@pytest.mark.parametrize(
    ("step", "named"),
    [
        (f"RUN echo x >> {SRC}/artifacts/onnx/model.int8.onnx", "artifacts/onnx/model.int8.onnx"),
        (f"RUN echo 'import os' >> {SRC}/textclf/inference.py", "src/textclf/inference.py"),
        (f"RUN rm {SRC}/artifacts/onnx/textclf.json", "artifacts/onnx/textclf.json: missing"),
        (f"RUN touch {SRC}/textclf/sitecustomize.py", "textclf/sitecustomize.py: in the image"),
    ],
)
def test_a_layer_that_changes_a_shipped_file_is_refused(
    podman: Podman,
    built_images: list[str],
    save: Save,
    tmp_path: Path,
    step: str,
    named: str,
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    base = _built("textclf", "serving")
    (context / "Containerfile").write_text(f"FROM {base}\nUSER root\n{step}\nUSER bentoml\n")
    tampered = image_name("tampered")
    built_images.append(tampered)
    podman.build(context, tampered)
    with pytest.raises(ReleaseError, match="does not ship what bentofile.yaml") as err:
        verify_archive(REPO, "cpu", save(tampered))
    assert named in str(err.value)
