"""The release steps: tags into the overlays, digests from the registry, and the checks on both.

In the order a model change goes through them:

1. :func:`write_manifests` (the author, ``make release-manifests``): every overlay pin gets the
   tag computed from the workspace; a digest whose tag changed is dropped.
2. The review builds each image in a job without credentials and pushes it from one that runs
   no pull-request code (:func:`textclf.release.registry.push`: never moves a tag).
3. :func:`pin` (the author, ``make release-pin``): each pin gets the digest the registry holds
   for its tag.
4. :func:`verify_images` (the review's required check, and the release on main): every pin's
   ``tag@digest`` is in the registry, so a merge can never deploy a missing image, and the
   release verifies and builds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from textclf.errors import ReleaseError
from textclf.release import registry
from textclf.release.overlays import Pin, pins, set_pins
from textclf.release.tag import IMAGES, ReleaseInputs, compute

FIX_MANIFESTS = "run `make release-manifests` (`textclf release manifests`) and commit the overlays"
FIX_PIN = (
    "once the review has pushed the images, run `make release-pin` (`textclf release pin`) and "
    "commit the overlays"
)


def computed(
    root: Path, rev: str | None = None, *, verify: bool = True
) -> dict[str, ReleaseInputs]:
    """The release inputs of every image (the workspace's, or commit ``rev``'s)."""
    return {key: compute(root, rev, image=key, verify=verify) for key in IMAGES}


def check(root: Path, rev: str | None = None) -> dict[str, str]:
    """Raise unless every overlay pin names its image's computed tag; return the tags.

    Without ``rev`` the shipped outputs must also match dvc.lock (``dvc status``); with ``rev``
    everything is read from that commit (git only): what is committed, whatever a retrain
    rewrote in the workspace.
    """
    tags = {key: inputs.tag for key, inputs in computed(root, rev).items()}
    stale = [p for p in pins(root, rev) if p.tag != tags[p.image_key]]
    if stale:
        raise ReleaseError(
            "the overlays name other images than dvc.lock and the shipped files give:\n  "
            + "\n  ".join(
                f"{p.overlay} ({p.name}): {p.tag!r}, computed {tags[p.image_key]!r}" for p in stale
            )
            + f"\nFix: {FIX_MANIFESTS} with the model change."
        )
    return tags


def write_manifests(root: Path, *, verify: bool = True) -> tuple[dict[str, str], list[str]]:
    """Write the computed tags into every pin; (the tags, the overlays that changed)."""
    tags = {key: inputs.tag for key, inputs in computed(root, verify=verify).items()}
    values = {}
    for p in pins(root):
        tag = tags[p.image_key]
        values[(p.overlay, p.name)] = (tag, p.digest if p.tag == tag else None)
    return tags, set_pins(root, values)


@dataclass(frozen=True)
class Problem:
    """A pin the registry does not back."""

    pin: Pin
    why: str

    def __str__(self) -> str:
        return f"{self.pin.overlay} ({self.pin.name}): {self.pin.image}: {self.why}"


def pin(root: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """Write into each pin the digest its tag names in the registry; the overlays that changed.

    Raises, naming every image that is not in the registry yet, and writes nothing then.
    """
    found: dict[tuple[str, str], tuple[str, str | None]] = {}
    missing = []
    for p in pins(root):
        if p.tag is None:
            raise ReleaseError(f"{p.overlay} ({p.name}) has no newTag. Fix: {FIX_MANIFESTS}")
        digest = registry.digest(p.image, env)
        if digest is None:
            missing.append(p.image)
            continue
        found[(p.overlay, p.name)] = (p.tag, digest)
    if missing:
        raise ReleaseError(
            "not in the registry yet: "
            + ", ".join(sorted(set(missing)))
            + ". Fix: wait for the review's image jobs to push them (a fork's commit is built "
            "once a maintainer pushes it to a branch of this repository), then run "
            "`make release-pin` again."
        )
    return set_pins(root, found)


def verify_images(
    root: Path,
    rev: str | None = None,
    *,
    require_digests: bool = True,
    env: Mapping[str, str] | None = None,
) -> list[Pin]:
    """Raise unless every pin's tag is in the registry and names the pinned digest."""
    problems: list[Problem] = []
    checked = pins(root, rev)
    for p in checked:
        if p.tag is None:
            problems.append(Problem(p, f"no newTag. Fix: {FIX_MANIFESTS}"))
            continue
        if p.digest is None and require_digests:
            problems.append(Problem(p, f"no digest pinned. Fix: {FIX_PIN}"))
            continue
        actual = registry.digest(p.image, env)
        if actual is None:
            problems.append(
                Problem(p, "not in the registry. Fix: wait for the review's image job to push it")
            )
        elif p.digest is not None and actual != p.digest:
            problems.append(
                Problem(
                    p,
                    f"the registry has {actual}, the overlay pins {p.digest}: the tag was moved "
                    "or the pin edited by hand. Fix: do not release; find out who pushed it",
                )
            )
    if problems:
        raise ReleaseError(
            f"{len(problems)} image pin(s) the registry does not back:\n  "
            + "\n  ".join(map(str, problems))
        )
    return checked
