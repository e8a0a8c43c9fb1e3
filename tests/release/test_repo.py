"""This repository's committed release: the production overlay names the computed tag."""

from __future__ import annotations

from textclf.release import TAG_OVERLAY, committed_tag, compute, image_repository

from .conftest import REPO


def test_production_overlay_names_the_tag_of_this_commit() -> None:
    """`make release-manifests` was run and committed with the current dvc.lock and code.

    Reads dvc.lock and git files only (no `dvc status`, no pulled outputs), so it holds in any
    checkout; `make release-check` adds the `dvc status` half where the outputs are present.
    """
    tag = compute(REPO, verify=False).tag
    assert committed_tag(REPO) == tag, (
        f"{TAG_OVERLAY} names {committed_tag(REPO)}, the committed content gives {tag}: run "
        "`make release-manifests` and commit the overlay"
    )


def test_both_images_live_in_the_overlays_registry() -> None:
    cpu, gpu = image_repository(REPO, "cpu"), image_repository(REPO, "gpu")
    assert gpu == f"{cpu}-gpu"
    assert cpu.startswith("ghcr.io/")
