"""This repository's committed release: the production overlay names the tag of this commit.

Everything here is read from the commit (``HEAD``), never from the workspace: a new machine
retrains (its DVC remote is empty), gets a model with other bytes, and rewrites dvc.lock, so the
workspace after `make run` may name another tag than the commit does.
"""

from __future__ import annotations

from textclf.release.flow import check
from textclf.release.overlays import pin_of, pins
from textclf.release.tag import compute

from .conftest import REPO


def test_every_overlay_pin_names_the_tags_of_this_commit() -> None:
    """`make release-manifests` was run and committed with the committed dvc.lock and code."""
    tags = {key: compute(REPO, "HEAD", image=key, verify=False).tag for key in ("serving", "drift")}
    for pin in pins(REPO, "HEAD"):
        assert pin.tag == tags[pin.image_key], (
            f"{pin.overlay} ({pin.name}) names {pin.tag}, the committed content gives "
            f"{tags[pin.image_key]}: run `make release-manifests` and commit the overlays"
        )
    assert check(REPO, "HEAD") == tags


def test_every_image_lives_in_the_overlays_registry() -> None:
    cpu, gpu, drift = (pin_of(REPO, v, "HEAD").repository for v in ("cpu", "gpu", "drift"))
    assert gpu == f"{cpu}-gpu" and drift == f"{cpu}-drift"
    assert cpu.startswith("ghcr.io/")
