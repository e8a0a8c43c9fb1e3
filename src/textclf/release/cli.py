"""``textclf release``: tags, overlay pins, registry checks and pushes, DVC byte verification."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from textclf.console import fail
from textclf.errors import ReleaseError
from textclf.release import flow, registry, runner
from textclf.release.archive import verify_archive
from textclf.release.lock import uncommitted
from textclf.release.overlays import pin_of
from textclf.release.tag import (
    IMAGES,
    VARIANTS,
    ReleaseInputs,
    compute,
    shipped_outputs,
    stage_context,
)
from textclf.release.verify import verify_cmd

release_app = typer.Typer(
    help="Release tags from committed content, the overlay pins that name them, and the "
    "registry checks.\n\nEach image's tag is a hash of the dvc.lock md5s of the outputs it ships "
    "and of the files it ships or builds with (serving: m-<12 hex>, drift: d-<12 hex>). See "
    "`textclf release tag --explain`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
release_app.command("verify")(verify_cmd)

RootOpt = Annotated[Path, typer.Option("--root", help="repository root.")]
RevOpt = Annotated[
    str | None,
    typer.Option("--rev", help="read this commit instead of the working tree (git only)."),
]
NoStatusOpt = Annotated[
    bool,
    typer.Option(
        "--no-status", help="skip the `dvc status` check (the tag then only describes dvc.lock)."
    ),
]
ImageOpt = Annotated[str, typer.Option("--image", help=f"which image's tag: {', '.join(IMAGES)}.")]
VariantOpt = Annotated[
    str,
    typer.Option(
        "--variant",
        help="cpu (bentofile.yaml), gpu (bentofile.gpu.yaml) or drift (images/drift.yaml).",
    ),
]


def _checked(name: str, choices: Mapping[str, object]) -> str:
    if name not in choices:
        fail(ReleaseError(f"{name!r}: choose one of {', '.join(choices)}"))
    return name


def _reference(root: Path, variant: str, rev: str | None) -> str:
    """``<production newName>:<computed tag>`` of a variant (the image the release ships)."""
    kind = _checked(variant, VARIANTS)
    repository = pin_of(root, kind, rev).repository
    tag = compute(root, rev, image=VARIANTS[kind], verify=False).tag
    return f"{repository}:{tag}"


ArchiveArg = Annotated[
    Path, typer.Argument(help="OCI archive (`podman save --format oci-archive`).")
]


def _note_uncommitted(root: Path, inputs: ReleaseInputs) -> None:
    dirty = uncommitted(root, [*inputs.files, "dvc.lock"])
    if dirty:
        typer.secho(
            f"note: the tag covers uncommitted changes to {', '.join(dirty)}; commit them "
            "together with deploy/overlays",
            fg=typer.colors.YELLOW,
            err=True,
        )


@release_app.command("tag")
def tag_cmd(
    root: RootOpt = Path(),
    rev: RevOpt = None,
    image: ImageOpt = "serving",
    explain: Annotated[
        bool,
        typer.Option("--explain", help="print the hashed manifest (one line per output and file)."),
    ] = False,
    no_status: NoStatusOpt = False,
) -> None:
    """Print an image's tag, computed from dvc.lock and the files the image ships.

    Without --rev it reads the working tree and first checks `dvc status` (exit 2 if the
    shipped outputs are stale or missing). Same content, same tag; a revert gives the old tag.
    """
    key = _checked(image, IMAGES)
    inputs = compute(root, rev, image=key, verify=not no_status)
    if rev is None:
        _note_uncommitted(root, inputs)
    if explain:
        typer.echo(inputs.manifest(), nl=False)
    typer.echo(inputs.tag)


@release_app.command("outputs")
def outputs_cmd(root: RootOpt = Path()) -> None:
    """Print the DVC outputs the images ship, one per line (for `dvc pull $(...)`)."""
    typer.echo("\n".join(shipped_outputs(root)))


@release_app.command("image")
def image_cmd(root: RootOpt = Path(), rev: RevOpt = None, variant: VariantOpt = "cpu") -> None:
    """Print a variant's image reference: <overlay newName>:<computed tag>."""
    typer.echo(_reference(root, variant, rev))


@release_app.command("manifests")
def manifests_cmd(root: RootOpt = Path(), no_status: NoStatusOpt = False) -> None:
    """Write the computed tags into every overlay pin (commit them with dvc.lock).

    A digest pinned for a tag that changed is removed: run `make release-pin` once the review
    has pushed the new images.
    """
    tags, changed = flow.write_manifests(root, verify=not no_status)
    for key, tag in tags.items():
        inputs = compute(root, image=key, verify=False)
        _note_uncommitted(root, inputs)
        typer.echo(f"{key}: {tag}")
    for overlay in changed:
        typer.echo(f"wrote {overlay}: commit it")
    if not changed:
        typer.echo("the overlays already name these tags")


@release_app.command("pin")
def pin_cmd(root: RootOpt = Path()) -> None:
    """Write the digest the registry holds for each pinned tag into the overlays (then commit).

    Run it after the review pushed the images of this commit; fails, writing nothing, while one
    is missing. Reads $TEXTCLF_REGISTRY_USERNAME / $TEXTCLF_REGISTRY_PASSWORD.
    """
    changed = flow.pin(root)
    for overlay in changed:
        typer.echo(f"wrote digests to {overlay}: commit it")
    if not changed:
        typer.echo("the overlays already pin the registry's digests")


@release_app.command("check")
def check_cmd(root: RootOpt = Path(), rev: RevOpt = None) -> None:
    """Fail (exit 2) unless outputs match dvc.lock and every overlay names the computed tags."""
    tags = flow.check(root, rev)
    where = f"commit {rev}" if rev else "dvc status clean,"
    typer.echo(
        f"release {', '.join(f'{k} {t}' for k, t in tags.items())}: {where} overlays name them"
    )


@release_app.command("images")
def images_cmd(
    root: RootOpt = Path(),
    rev: RevOpt = None,
    allow_unpinned: Annotated[
        bool,
        typer.Option(
            "--allow-unpinned", help="accept pins without a digest (only check their tags exist)."
        ),
    ] = False,
) -> None:
    """Fail (exit 2) unless every overlay pin's tag@digest is in its registry.

    The review's required check and the release's verification: a merge can never deploy an
    image that is missing or that is not the one pinned.
    """
    checked = flow.verify_images(root, rev, require_digests=not allow_unpinned)
    for p in checked:
        typer.echo(f"{p.overlay}: {p.image}@{p.digest or '(unpinned)'}")


@release_app.command("exists")
def exists_cmd(
    root: RootOpt = Path(),
    variant: VariantOpt = "cpu",
    image: Annotated[
        str | None,
        typer.Option("--image", help="check this reference instead of the variant's computed one."),
    ] = None,
    no_status: NoStatusOpt = False,
) -> None:
    """Exit 0 if the image is in its registry, 1 if it is not, 2 on error.

    Reads $TEXTCLF_REGISTRY_USERNAME and $TEXTCLF_REGISTRY_PASSWORD (e.g. github.actor and
    GITHUB_TOKEN for ghcr.io).
    """
    if image is None and not no_status:
        compute(root, image=VARIANTS[_checked(variant, VARIANTS)])  # dvc status
    ref = image or _reference(root, variant, None)
    found = registry.digest(ref, os.environ)
    typer.echo(f"{ref}: {found if found else 'missing'}")
    raise typer.Exit(code=0 if found else 1)


@release_app.command("missing")
def missing_cmd(root: RootOpt = Path(), rev: RevOpt = None) -> None:
    """Print, as a JSON list, the variants whose image for this content is not in the registry.

    What the review builds (a tag that exists is never rebuilt: its bytes are already pinned or
    can be). Reads the registry credentials like `exists`.
    """
    import json

    missing = [
        variant
        for variant in VARIANTS
        if registry.digest(_reference(root, variant, rev), os.environ) is None
    ]
    typer.echo(json.dumps(missing))


@release_app.command("push")
def push_cmd(
    archive: ArchiveArg,
    root: RootOpt = Path(),
    rev: RevOpt = None,
    variant: VariantOpt = "cpu",
    outputs: Annotated[
        Path | None,
        typer.Option(
            "--outputs", help="append repository= and digest= lines here ($GITHUB_OUTPUT)."
        ),
    ] = None,
) -> None:
    """Push an image archive as <overlay newName>:<computed tag>; never move an existing tag.

    A tag that already names the archive's digest is left as it is; one that names another
    digest fails (exit 2). Prints the digest. Reads the registry credentials like `exists`.
    """
    ref = _reference(root, variant, rev)
    digest, pushed = registry.push(archive, ref)
    typer.echo(f"{'pushed' if pushed else 'already there:'} {ref}@{digest}")
    repository = ref.rsplit(":", 1)[0]
    if outputs is not None:
        with outputs.open("a", encoding="utf-8") as out:
            out.write(f"repository={repository}\ndigest={digest}\n")


@release_app.command("verify-archive")
def verify_archive_cmd(
    archive: ArchiveArg,
    root: RootOpt = Path(),
    rev: RevOpt = None,
    variant: VariantOpt = "cpu",
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache", help="DVC cache holding the outputs' listings (default: the repo's)."
        ),
    ] = None,
) -> None:
    """Fail (exit 2) unless an image archive ships exactly what its definition and dvc.lock name.

    Re-hashes every model file in the image's layers against dvc.lock and every source file
    against the commit: run it on an archive a pull-request job built, before pushing it, and
    on the pushed image before releasing it.
    """
    kind = _checked(variant, VARIANTS)
    checked = verify_archive(root, kind, archive, rev, cache)
    typer.echo(
        f"{archive}: {checked.files} files as named ({checked.model_files} model files against "
        "dvc.lock)"
    )


@release_app.command("verify-image")
def verify_image_cmd(
    root: RootOpt = Path(),
    rev: RevOpt = None,
    variant: VariantOpt = "cpu",
    attested_by: Annotated[
        str | None,
        typer.Option(
            "--attested-by",
            help="also require a build provenance attestation from this repository "
            "(owner/name; `gh attestation verify`).",
        ),
    ] = None,
) -> None:
    """Fetch a variant's pinned tag@digest and check it ships what dvc.lock and the commit name.

    The release on main: the image the overlays pin is fetched by digest, its files re-hashed
    (`verify-archive`, listings from the local DVC cache: `make release-pull` first), and, with
    --attested-by, its provenance verified. Builds nothing.
    """
    import subprocess
    import tempfile

    kind = _checked(variant, VARIANTS)
    pinned = pin_of(root, kind, rev)
    if pinned.tag is None or pinned.digest is None:
        fail(ReleaseError(f"{pinned.overlay} pins {pinned.name} without a tag and digest"))
    tag, digest = pinned.tag, pinned.digest
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "image.tar"
        registry.pull(pinned.repository, tag, digest, archive)
        checked = verify_archive(root, kind, archive, rev)
    if attested_by:
        proc = subprocess.run(
            [
                "gh",
                "attestation",
                "verify",
                f"oci://{pinned.repository}@{digest}",
                "--repo",
                attested_by,
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            fail(
                ReleaseError(
                    f"no valid provenance for {pinned.repository}@{digest}: "
                    f"{proc.stderr.strip()[-800:]}"
                )
            )
    typer.echo(
        f"{pinned.repository}:{tag}@{digest}: {checked.files} files as named"
        + (f", attested by {attested_by}" if attested_by else "")
    )


@release_app.command("context")
def context_cmd(
    dest: Annotated[Path, typer.Argument(help="empty directory to fill (the build context).")],
    root: RootOpt = Path(),
    variant: VariantOpt = "drift",
) -> None:
    """Copy exactly what an image definition ships and builds with into a build context.

    For images built from a Containerfile (drift): `podman build -f
    <dest>/images/drift.Containerfile <dest>` then sees nothing else of the checkout.
    """
    kind = _checked(variant, VARIANTS)
    copied = stage_context(root, kind, dest)
    typer.echo(f"copied {len(copied)} files to {dest}")


RepositoryOpt = Annotated[
    str,
    typer.Option(
        "--repository",
        help="the runner image's repository, e.g. ghcr.io/your-org/gitops-text-classifier-runner.",
    ),
]


@release_app.command("runner-tag")
def runner_tag_cmd(root: RootOpt = Path(), rev: RevOpt = None) -> None:
    """Print the review runners' image tag: r-<12 hex> of its Containerfile and lock."""
    typer.echo(runner.tag(root, rev))


@release_app.command("runner-check")
def runner_check_cmd(root: RootOpt = Path()) -> None:
    """Fail (exit 2) unless requirements/review-gpu.txt pins every dependency of pyproject.toml."""
    problems = runner.lock_problems(root)
    if problems:
        fail(ReleaseError("the runner lock is stale:\n  " + "\n  ".join(problems)))
    extras = ", ".join(runner.EXTRAS)
    typer.echo(f"{runner.LOCK} pins every dependency of pyproject.toml (extras {extras})")


@release_app.command("runner-context")
def runner_context_cmd(
    dest: Annotated[Path, typer.Argument(help="empty directory to fill (the build context).")],
    root: RootOpt = Path(),
) -> None:
    """Copy the runner image's Containerfile and lock (nothing else) into a build context."""
    copied = runner.stage_context(root, dest)
    typer.echo(f"copied {len(copied)} files to {dest}")


@release_app.command("runner-push")
def runner_push_cmd(
    archive: ArchiveArg,
    repository: RepositoryOpt,
    root: RootOpt = Path(),
    outputs: Annotated[
        Path | None,
        typer.Option(
            "--outputs", help="append repository=, image= and digest= lines ($GITHUB_OUTPUT)."
        ),
    ] = None,
    summary: Annotated[
        Path | None,
        typer.Option("--summary", help="append how to pin it here ($GITHUB_STEP_SUMMARY)."),
    ] = None,
) -> None:
    """Push the runner image archive as <repository>:<runner tag>; never move an existing tag."""
    ref = f"{repository}:{runner.tag(root)}"
    digest, pushed = registry.push(archive, ref)
    typer.echo(f"{'pushed' if pushed else 'already there:'} {ref}@{digest}")
    if outputs is not None:
        with outputs.open("a", encoding="utf-8") as out:
            out.write(f"repository={repository}\nimage={ref}\ndigest={digest}\n")
    if summary is not None:
        with summary.open("a", encoding="utf-8") as out:
            out.write(
                f"Runner image: `{ref}@{digest}`\n\nPin it: `make runner-pin "
                f"RUNNER_REPOSITORY={repository}`, commit {runner.VALUES}, then `helm upgrade` "
                "the scale set (deploy/runners/README.md).\n"
            )


@release_app.command("runner-pin")
def runner_pin_cmd(repository: RepositoryOpt, root: RootOpt = Path()) -> None:
    """Pin the runner image of this checkout's lock by tag and digest in deploy/runners/values.yaml.

    Reads the digest from the registry; fails, writing nothing, while the image workflow on main
    has not pushed that tag. Then commit values.yaml and `helm upgrade` the scale set.
    """
    image, changed = runner.pin(root, repository)
    typer.echo(f"{'wrote' if changed else 'already pinned:'} {image} in {runner.VALUES}")
