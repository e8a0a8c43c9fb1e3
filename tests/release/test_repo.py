"""This repository's committed release: the production overlay names the tag of this commit.

Everything here is read from the commit (``HEAD``), never from the workspace: a new machine
retrains (its DVC remote is empty), gets a model with other bytes, and rewrites dvc.lock, so the
workspace after `make run` may name another tag than the commit does.
"""

from __future__ import annotations

from textclf.release import TAG_OVERLAY, check, committed_tag, compute, image_repository

from .conftest import REPO


def test_production_overlay_names_the_tag_of_this_commit() -> None:
    """`make release-manifests` was run and committed with the committed dvc.lock and code."""
    tag = compute(REPO, "HEAD", verify=False).tag
    assert committed_tag(REPO, "HEAD") == tag, (
        f"{TAG_OVERLAY} names {committed_tag(REPO, 'HEAD')}, the committed content gives {tag}: "
        "run `make release-manifests` and commit the overlay with dvc.lock"
    )
    assert check(REPO, "HEAD") == tag  # staging names it too


def test_both_images_live_in_the_overlays_registry() -> None:
    cpu, gpu = image_repository(REPO, "cpu", "HEAD"), image_repository(REPO, "gpu", "HEAD")
    assert gpu == f"{cpu}-gpu"
    assert cpu.startswith("ghcr.io/")
