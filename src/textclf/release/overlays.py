"""The deploy overlays' image pins: which image, tag and digest each environment runs.

Each overlay pins every image it runs by tag *and* digest (kustomize ``images:`` entries with
``newName``, ``newTag`` and ``digest``; the pod then pulls ``name:tag@digest``, so the tag is for
people and the digest for the node). The pins, by overlay and kustomize image name:

=================  ======================================  =======
overlay            kustomize name                          variant
=================  ======================================  =======
production         ``textclf``                             cpu
production         ``textclf-drift``                       drift
staging            ``textclf``                             cpu
staging            ``textclf-drift``                       drift
production-gpu     production's CPU ``newName`` (renamed)  gpu
=================  ======================================  =======

``release manifests`` writes the tags (and drops a digest whose tag changed); ``release pin``
writes the digests the registry holds for those tags, once the review pushed the images. The
files are edited with ruamel.yaml's round trip, so comments and layout stay byte for byte.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from textclf import io as atomic
from textclf.errors import ReleaseError
from textclf.release.git import Tree, load_yaml
from textclf.release.tag import VARIANTS

PRODUCTION = "deploy/overlays/production/kustomization.yaml"
PRODUCTION_GPU = "deploy/overlays/production-gpu/kustomization.yaml"
STAGING = "deploy/overlays/staging/kustomization.yaml"
#: (overlay, kustomize image name, variant); None: production's CPU newName (the GPU rename).
PINS: tuple[tuple[str, str | None, str], ...] = (
    (PRODUCTION, "textclf", "cpu"),
    (PRODUCTION, "textclf-drift", "drift"),
    (STAGING, "textclf", "cpu"),
    (STAGING, "textclf-drift", "drift"),
    (PRODUCTION_GPU, None, "gpu"),
)
OCI_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Pin:
    """One overlay entry: the image an environment runs, by tag and digest."""

    overlay: str
    name: str
    variant: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def image(self) -> str:
        """``repository:tag`` (what the registry is asked about)."""
        return f"{self.repository}:{self.tag}"

    @property
    def image_key(self) -> str:
        """Which released image this is (``serving`` or ``drift``)."""
        return VARIANTS[self.variant]


def _entries(tree: Tree, overlay: str) -> list[dict[str, Any]]:
    doc = load_yaml(tree, overlay, "the deploy overlays name the released images")
    images = (doc or {}).get("images") or []
    if not isinstance(images, list):
        raise ReleaseError(f"{overlay}: `images:` must be a list of kustomize image entries")
    return [e for e in images if isinstance(e, dict)]


def _entry(tree: Tree, overlay: str, name: str) -> dict[str, Any]:
    found = [e for e in _entries(tree, overlay) if e.get("name") == name]
    if len(found) != 1:
        raise ReleaseError(
            f"{overlay} must have exactly one `images:` entry named {name!r} (found "
            f"{len(found)}), with newName, newTag and digest"
        )
    if not found[0].get("newName"):
        raise ReleaseError(f"{overlay}: the image entry {name!r} has no newName (its repository)")
    return found[0]


def pins(root: Path, rev: str | None = None) -> list[Pin]:
    """Every image pin of the overlays, in the working tree or at commit ``rev``."""
    tree = Tree(root, rev)
    cpu_repository = str(_entry(tree, PRODUCTION, "textclf")["newName"])
    out = []
    for overlay, name, variant in PINS:
        key = name or cpu_repository
        entry = _entry(tree, overlay, key)
        tag, digest = entry.get("newTag"), entry.get("digest")
        out.append(
            Pin(
                overlay,
                key,
                variant,
                str(entry["newName"]),
                str(tag) if tag else None,
                str(digest) if digest else None,
            )
        )
    return out


def pin_of(root: Path, variant: str, rev: str | None = None) -> Pin:
    """The production pin of a variant (what the release ships)."""
    return next(p for p in pins(root, rev) if p.variant == variant and p.overlay != STAGING)


def roundtrip_yaml() -> YAML:
    """ruamel's round trip, set up so that a load and dump changes no byte of our files."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _write_pins(overlay: str, entries: Mapping[str, tuple[str, str | None]], doc: Any) -> None:
    images = doc.get("images") or []
    for name, (tag, digest) in entries.items():
        found = [e for e in images if e.get("name") == name]
        if len(found) != 1:
            raise ReleaseError(f"{overlay} must have exactly one `images:` entry named {name!r}")
        entry = found[0]
        entry["newTag"] = DoubleQuotedScalarString(tag)
        if digest is None:
            entry.pop("digest", None)
        else:
            entry["digest"] = DoubleQuotedScalarString(digest)


def edit_yaml(path: Path, change: Callable[[Any], None]) -> bool:
    """Apply ``change`` to ``path``'s round-trip document; write it atomically if it changed."""
    text = path.read_text(encoding="utf-8")
    yaml = roundtrip_yaml()
    doc = yaml.load(text)
    change(doc)
    out = io.StringIO()
    yaml.dump(doc, out)
    if out.getvalue() == text:
        return False
    atomic.write_text(path, out.getvalue())
    return True


def set_pins(root: Path, values: Mapping[tuple[str, str], tuple[str, str | None]]) -> list[str]:
    """Write ``(overlay, name) -> (tag, digest)`` into the overlays; the overlays that changed.

    Only those keys change (comments and layout are kept). A digest of None removes it: a
    digest that named the old tag's image must never stay next to a new tag.
    """
    changed = []
    by_overlay: dict[str, dict[str, tuple[str, str | None]]] = {}
    for (overlay, name), value in values.items():
        tag, digest = value
        if not OCI_TAG.fullmatch(tag):
            raise ReleaseError(f"{tag!r} is not a valid image tag")
        if digest is not None and not DIGEST.fullmatch(digest):
            raise ReleaseError(f"{digest!r} is not a sha256 image digest")
        by_overlay.setdefault(overlay, {})[name] = value
    for overlay, entries in by_overlay.items():
        path = root / overlay
        if not path.is_file():
            raise ReleaseError(f"{path} not found: restore it from git (`git checkout -- {path}`)")
        if edit_yaml(path, partial(_write_pins, overlay, entries)):
            changed.append(overlay)
    return changed
