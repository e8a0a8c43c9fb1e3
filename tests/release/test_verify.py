"""`release verify` re-hashes every DVC byte against dvc.lock: the promotion review -> release.

Real git, real DVC and two local remotes, `review` and `release`, beside the repository (the
committed .dvc/config names them by relative URLs, so every clone in the same folder finds them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from textclf.cli import app
from textclf.errors import ReleaseError
from textclf.release.verify import bad_relpath, object_path, verify_against_lock

from .conftest import REPO, commit_all, dvc, git, write_yaml

#: Stand-in train stage: a directory output (with a subfolder) derived from the data.
MAKE_MODEL = """\
import pathlib, random
out = pathlib.Path("out/model")
(out / "sub").mkdir(parents=True, exist_ok=True)
rows = pathlib.Path("data/corpus.csv").read_text()
(out / "weights.bin").write_bytes(random.Random(rows).randbytes(50_000))
(out / "config.json").write_text('{"layers": 2}\\n')
(out / "sub" / "vocab.txt").write_text("a\\nb\\nc\\n")
"""
#: Stand-in card stage: a file output and an uncached metrics file.
MAKE_CARD = """\
import json, pathlib
size = pathlib.Path("out/model/weights.bin").stat().st_size
pathlib.Path("out/card.txt").write_text(f"model of {size} bytes\\n")
pathlib.Path("reports").mkdir(exist_ok=True)
pathlib.Path("reports/metrics.json").write_text(json.dumps({"f1": 0.5}) + "\\n")
"""
PIPELINE = {
    "stages": {
        "train": {
            "cmd": "python make_model.py",
            "deps": ["make_model.py", "data"],
            "outs": ["out/model"],
        },
        "card": {
            "cmd": "python make_card.py",
            "deps": ["make_card.py", "out/model"],
            "outs": ["out/card.txt"],
            "metrics": [{"reports/metrics.json": {"cache": False}}],
        },
    }
}
DVC_CONFIG = """\
[core]
    remote = review
['remote "review"']
    url = ../../remotes/review
['remote "release"']
    url = ../../remotes/release
"""


@pytest.fixture(autouse=True)
def _no_analytics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """repo/ after `dvc repro` and `dvc add data`, committed, pushed to remotes/review."""
    world = tmp_path_factory.mktemp("verify")
    root = world / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "test")
    git(root, "config", "commit.gpgsign", "false")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DVC_NO_ANALYTICS", "1")
        dvc(root, "init", "-q")
        (root / ".dvc" / "config").write_text(DVC_CONFIG)
        (root / "data").mkdir()
        (root / "data" / "corpus.csv").write_text("text,label\nfine,1\nbad,0\r\n")
        (root / "make_model.py").write_text(MAKE_MODEL)
        (root / "make_card.py").write_text(MAKE_CARD)
        write_yaml(root / "dvc.yaml", PIPELINE)
        dvc(root, "add", "-q", "data")
        dvc(root, "repro", "-q")
        commit_all(root, "model A")
        dvc(root, "push", "-q", "-r", "review")
    return world


@dataclass
class World:
    """A copy of the template: the repository and its remotes, side by side."""

    base: Path

    @property
    def repo(self) -> Path:
        return self.base / "repo"

    def remote(self, name: str) -> Path:
        return self.base / "remotes" / name

    def clone(self, name: str) -> Path:
        """A fresh `git clone` of the repository: no DVC cache, no outputs."""
        git(self.base, "clone", "-q", str(self.repo), name)
        clone = self.base / name
        assert not (clone / ".dvc" / "cache").exists() and not (clone / "out/model").exists()
        return clone


@pytest.fixture
def world(_template: Path, tmp_path: Path) -> World:
    shutil.copytree(_template, tmp_path / "w", symlinks=True)
    return World(tmp_path / "w")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def lock_md5(root: Path, path: str) -> str:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return next(
        o["md5"] for s in lock["stages"].values() for o in s.get("outs", []) if o["path"] == path
    )


def overwrite(path: Path, data: bytes) -> None:
    """Replace the bytes of a (read-only) DVC object or workspace file."""
    path.chmod(0o644)
    path.write_bytes(data)


def tamper_remote_object(world: World, workspace_file: str) -> tuple[str, bytes]:
    """Overwrite, in the review remote, the object of a file of the repo; (its md5, new bytes)."""
    honest = md5((world.repo / workspace_file).read_bytes())
    evil = b"backdoored weights " * 100
    overwrite(object_path(world.remote("review"), honest), evil)
    return honest, evil


def run_dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """dvc in ``root``, whatever its exit status."""
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True
    )


def verify(root: Path, *args: str) -> Result:
    """`textclf release verify <args> --root <root>` through the real CLI."""
    return CliRunner().invoke(app, ["release", "verify", *args, "--root", str(root)])


def summary(root: Path, outputs: list[str]) -> str:
    """The expected summary line, from the workspace files of ``outputs``."""
    files = [f for o in outputs for f in sorted((root / o).rglob("*")) or [root / o] if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    return (
        f"verified {len(outputs)} outputs, {len(files)} files, {size / 1e6:.1f} MB against dvc.lock"
    )


# --------------------------------------------------------------------------- clean


def test_a_clean_checkout_verifies_and_counts_every_file(world: World) -> None:
    result = verify(world.repo)
    assert result.exit_code == 0, result.output
    assert result.stdout == summary(world.repo, ["out/card.txt", "out/model"]) + "\n"
    assert "4 files" in result.stdout
    with_data = verify(world.repo, "--dvc-files")
    assert with_data.stdout.startswith("verified 3 outputs, 5 files,"), with_data.output

    done = verify_against_lock(world.repo)
    assert done.outputs == ("out/card.txt", "out/model") and done.files == 4
    assert done.bytes == 50_000 + sum(
        (world.repo / p).stat().st_size
        for p in ("out/card.txt", "out/model/config.json", "out/model/sub/vocab.txt")
    )
    assert done.skipped == ("reports/metrics.json",), "cache: false is on no remote"


def test_targets_are_outputs_stages_or_dvc_files(world: World) -> None:
    assert verify_against_lock(world.repo, targets=["train"]).outputs == ("out/model",)
    assert verify_against_lock(world.repo, targets=["data.dvc"]).outputs == ("data",)
    inside = verify_against_lock(world.repo, targets=["./out/model/sub/vocab.txt"])
    assert inside.outputs == ("out/model",) and inside.files == 3
    assert verify_against_lock(world.repo, targets=["card"]).outputs == ("out/card.txt",)
    unknown = verify(world.repo, "nope")
    assert unknown.exit_code == 2
    assert "'nope' is no output, stage or .dvc file" in unknown.stderr
    assert "out/card.txt, out/model" in unknown.stderr and "stages from card" in unknown.stderr
    uncached = verify(world.repo, "reports/metrics.json")
    assert uncached.exit_code == 2 and "`cache: false`" in uncached.stderr


def test_help_tells_a_new_user_the_promotion_commands() -> None:
    text = CliRunner().invoke(app, ["release", "verify", "--help"]).stdout
    for words in ("dvc fetch -r review", "--no-workspace", "dvc push -r release", "--rev"):
        assert words in text


# --------------------------------------------------------------------------- promotion


def test_promotion_review_to_release_end_to_end(world: World) -> None:
    """main's job: fetch from review, verify, push to release; the release pulls and verifies."""
    promoter = world.clone("promote")
    dvc(promoter, "fetch", "-q", "-r", "review")
    checked = verify(promoter, "--no-workspace", "-r", "review", "--dvc-files")
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith("verified 3 outputs, 5 files,")
    assert not world.remote("release").exists()
    dvc(promoter, "push", "-q", "-r", "release")

    released = world.clone("release")
    dvc(released, "pull", "-q", "-r", "release")
    shipped = verify(released, "-r", "release", "--dvc-files")
    assert shipped.exit_code == 0, shipped.output
    assert shipped.stdout == verify(world.repo, "--dvc-files").stdout


def test_a_tampered_file_object_on_review_fails_after_fetch(world: World) -> None:
    honest, evil = tamper_remote_object(world, "out/model/weights.bin")
    promoter = world.clone("promote")
    dvc(promoter, "fetch", "-q", "-r", "review")
    result = verify(promoter, "--no-workspace", "-r", "review")
    assert result.exit_code == 2
    obj = object_path(promoter / ".dvc" / "cache", honest)
    assert (
        f"out/model: file weights.bin: cache object {obj} is corrupt or tampered: expected md5 "
        f"{honest} (listing {lock_md5(world.repo, 'out/model')}), actual md5 {md5(evil)}. "
        f"Fix: delete it (`rm -f {obj}`) and run `dvc fetch -r review out/model` again"
    ) in result.stderr
    assert "treat remote review as compromised" in result.stderr
    assert result.stderr.count("\n  - ") == 1, "only the tampered file is reported"
    assert "1 problem verifying 2 DVC outputs" in result.stderr


def test_a_tampered_directory_listing_fails(world: World) -> None:
    listing_md5 = lock_md5(world.repo, "out/model")
    listing_obj = object_path(world.remote("review"), listing_md5)
    entries = json.loads(listing_obj.read_bytes())
    honest = {e["relpath"]: e["md5"] for e in entries}
    # Ship vocab.txt's honest bytes as config.json: every object exists and hashes right.
    forged = [{**e, "md5": honest["sub/vocab.txt"]} for e in entries]
    overwrite(listing_obj, json.dumps(forged).encode())
    promoter = world.clone("promote")
    dvc(promoter, "fetch", "-q", "-r", "review")
    result = verify(promoter, "--no-workspace")
    assert result.exit_code == 2
    assert "out/model: directory listing" in result.stderr
    assert f"corrupt or tampered: expected md5 {listing_md5.removesuffix('.dir')} (dvc.lock)" in (
        result.stderr
    )
    assert f"actual md5 {md5(json.dumps(forged).encode())}" in result.stderr


def test_a_missing_object_names_the_fetch(world: World) -> None:
    vocab = md5((world.repo / "out/model/sub/vocab.txt").read_bytes())
    object_path(world.remote("review"), vocab).unlink()
    promoter = world.clone("promote")
    fetched = run_dvc(promoter, "fetch", "-r", "review")
    assert fetched.returncode != 0, "DVC does fail here, and then keeps no listing"
    result = verify(promoter, "--no-workspace", "-r", "review")
    assert result.exit_code == 2
    listing = lock_md5(world.repo, "out/model")
    assert (
        f"out/model: directory listing: cache object "
        f"{object_path(promoter / '.dvc' / 'cache', listing)} is missing: expected md5 "
        f"{listing.removesuffix('.dir')} (dvc.lock), actual: none. Fix: run `dvc fetch -r "
        "review out/model`"
    ) in result.stderr
    # One object gone from a cache that has the listing: the file inside is named.
    object_path(world.repo / ".dvc" / "cache", vocab).unlink()
    local = verify(world.repo, "--no-workspace")
    assert local.exit_code == 2
    assert (
        f"out/model: file sub/vocab.txt: cache object "
        f"{object_path(world.repo / '.dvc' / 'cache', vocab)} is missing: expected md5 {vocab} "
        f"(listing {listing}), actual: none. Fix: run `dvc fetch -r review out/model`"
    ) in local.stderr


# --------------------------------------------------------------------------- workspace


def test_workspace_files_edited_after_checkout_fail(world: World) -> None:
    card, config = world.repo / "out/card.txt", world.repo / "out/model/config.json"
    card_md5, config_md5 = md5(card.read_bytes()), md5(config.read_bytes())
    edited = b"edited card\n"
    overwrite(card, edited)
    overwrite(config, b'{"layers": 3}\n')
    result = verify(world.repo)
    assert result.exit_code == 2
    assert (
        f"out/card.txt: the workspace file differs: expected md5 {card_md5} (dvc.lock), actual "
        f"md5 {md5(edited)}, and it would ship as is. Fix: run `dvc checkout --force "
        "out/card.txt`"
    ) in result.stderr
    assert (
        f"out/model: file config.json: the workspace file differs: expected md5 {config_md5}"
    ) in result.stderr
    assert "2 problems" in result.stderr
    assert verify(world.repo, "--no-workspace").exit_code == 0, "the cache is intact"


def test_an_extra_file_in_a_directory_output_fails_until_checkout(world: World) -> None:
    (world.repo / "out/model/backdoor.py").write_text("import os\n")
    result = verify(world.repo)
    assert result.exit_code == 2
    assert "out/model: file backdoor.py: in the workspace but not in listing" in result.stderr
    assert "Fix: run `dvc checkout --force out/model`" in result.stderr
    dvc(world.repo, "checkout", "-q", "--force", "out/model")
    assert verify(world.repo).exit_code == 0, "the printed fix works"


def test_a_missing_workspace_output_says_checkout(world: World) -> None:
    shutil.rmtree(world.repo / "out/model")
    result = verify(world.repo)
    assert result.exit_code == 2
    assert "out/model: not in the workspace" in result.stderr
    assert "`dvc checkout out/model`" in result.stderr and "--no-workspace" in result.stderr


# --------------------------------------------------------------------------- dvc.lock


def test_rev_reads_dvc_lock_from_that_commit(world: World) -> None:
    lock = world.repo / "dvc.lock"
    honest = lock_md5(world.repo, "out/card.txt")
    lock.write_text(lock.read_text().replace(honest, "deadbeef" * 4))
    worktree = verify(world.repo, "--no-workspace")
    assert worktree.exit_code == 2
    assert "out/card.txt: cache object" in worktree.stderr and "deadbeef" * 4 in worktree.stderr
    committed = verify(world.repo, "--no-workspace", "--rev", "HEAD")
    assert committed.exit_code == 0, committed.output
    assert verify_against_lock(world.repo, "HEAD", targets=["out/card.txt"]).files == 1
    bad = verify(world.repo, "--rev", "no-such-branch")
    assert bad.exit_code == 2 and "is not a commit" in bad.stderr


def test_dvc2_outputs_are_refused_with_the_migration(world: World) -> None:
    lock = yaml.safe_load((world.repo / "dvc.lock").read_text())
    for out in lock["stages"]["train"]["outs"]:
        del out["hash"]
    write_yaml(world.repo / "dvc.lock", lock)
    result = verify(world.repo)
    assert result.exit_code == 2
    assert "out/model (train): recorded without `hash: md5`, i.e. by DVC 2" in result.stderr
    assert "dvc cache migrate --dvc-files" in result.stderr
    assert verify(world.repo, "out/card.txt").exit_code == 0


def test_a_listing_that_escapes_its_output_is_refused(world: World) -> None:
    """A `.dir` object whose own md5 is right but that names `../` paths."""
    cache = world.repo / ".dvc" / "cache"
    weights = md5((world.repo / "out/model/weights.bin").read_bytes())
    hostile = json.dumps([{"md5": weights, "relpath": "../../.github/evil.yml"}]).encode()
    name = md5(hostile) + ".dir"
    object_path(cache, name).parent.mkdir(parents=True, exist_ok=True)
    object_path(cache, name).write_bytes(hostile)
    lock = world.repo / "dvc.lock"
    lock.write_text(lock.read_text().replace(lock_md5(world.repo, "out/model"), name))
    with pytest.raises(ReleaseError) as caught:
        verify_against_lock(world.repo, targets=["out/model"], workspace=False)
    assert "names '../../.github/evil.yml', which is absolute or leaves out/model" in str(
        caught.value
    )
    assert "review the commit that changed dvc.lock" in str(caught.value)


@pytest.mark.parametrize(
    ("relpath", "bad"),
    [
        ("a/b.txt", False),
        ("../x", True),
        ("a/../../x", True),
        ("/etc/x", True),
        ("", True),
        ("a//b", True),
        ("C:x", True),
        ("..x/y", False),
    ],
)
def test_bad_relpath(relpath: str, bad: bool) -> None:
    assert bad_relpath(relpath) is bad


def test_the_cache_dir_comes_from_dvc_config(world: World) -> None:
    shutil.move(world.repo / ".dvc" / "cache", world.base / "elsewhere")
    missing = verify(world.repo, "--no-workspace")
    assert missing.exit_code == 2 and "does not exist: run `dvc fetch -r review`" in missing.stderr
    (world.repo / ".dvc" / "config.local").write_text("[cache]\n    dir = ../../elsewhere\n")
    assert verify(world.repo).exit_code == 0
    assert verify(world.repo, "--cache", str(world.base / "elsewhere")).exit_code == 0


# --------------------------------------------------------------------------- negative controls


def test_without_this_check_dvc_pull_ships_tampered_bytes(world: World) -> None:
    """`dvc pull` does not re-hash, and `dvc status` then calls the tampered output clean."""
    _, evil = tamper_remote_object(world, "out/model/weights.bin")
    clone = world.clone("naive")
    dvc(clone, "pull", "-q", "-r", "review")
    assert (clone / "out/model/weights.bin").read_bytes() == evil
    assert "up to date" in dvc(clone, "status")
    result = verify(clone, "-r", "review")
    assert result.exit_code == 2
    assert "out/model: file weights.bin: cache object" in result.stderr
    assert "out/model: file weights.bin: the workspace file differs" in result.stderr
    assert "repair its cache object (above), then run `dvc checkout --force" in result.stderr


def test_dvc_remote_verify_drops_the_object_silently_or_not_at_all(world: World) -> None:
    """`verify = true` re-hashes downloads only: fetch exits 0 without the object."""
    honest, evil = tamper_remote_object(world, "out/model/weights.bin")
    strict = world.clone("strict")
    dvc(strict, "remote", "modify", "--local", "review", "verify", "true")
    fetched = run_dvc(strict, "fetch", "-r", "review")
    assert fetched.returncode == 0 and "corrupt" not in fetched.stdout + fetched.stderr
    assert not object_path(strict / ".dvc" / "cache", honest).exists()
    pulled = run_dvc(strict, "pull", "-r", "review")
    assert pulled.returncode != 0 and "Checkout failed" in pulled.stderr
    assert "weights.bin" not in pulled.stderr, "DVC names the output, not the file or why"
    result = verify(strict, "--no-workspace", "-r", "review")
    assert result.exit_code == 2 and "out/model: file weights.bin" in result.stderr
    # An object already in the local cache (e.g. a restored CI cache) is never re-hashed.
    cached = world.clone("cached")
    dvc(cached, "fetch", "-q", "-r", "review")
    dvc(cached, "remote", "modify", "--local", "review", "verify", "true")
    dvc(cached, "pull", "-q", "-r", "review")
    assert (cached / "out/model/weights.bin").read_bytes() == evil


def test_all_objects_rehashes_what_only_the_run_cache_names(world: World) -> None:
    """The review's push job uploads a cache PR code wrote, run-cache objects included."""
    stray = object_path(world.repo / ".dvc" / "cache", md5(b"an old run's output"))
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"not what its name says")
    assert verify(world.repo, "--no-workspace").exit_code == 0  # dvc.lock does not name it
    result = verify(world.repo, "--no-workspace", "--all-objects")
    assert result.exit_code == 2
    assert f"{stray}: cache object is corrupt or tampered" in result.output
    stray.unlink()
    ok = verify(world.repo, "--no-workspace", "--all-objects")
    assert ok.exit_code == 0 and "against their names" in ok.stdout


# --------------------------------------------------------------------------- the Makefile flow


def make(base: Path, target: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """`make <target>` of this repository's Makefile, run in ``base`` (a checkout standing in
    for the base branch) with this repository's .venv."""
    pyproject = base / "pyproject.toml"
    if not pyproject.exists():
        shutil.copy2(REPO / "pyproject.toml", pyproject)
        os.utime(pyproject, (0, 0))  # never newer than .venv/.installed: nothing reinstalls
    args = [f"{k}={v}" for k, v in variables.items()]
    return subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(base),
            "-f",
            str(REPO / "Makefile"),
            f"VENV={REPO / '.venv'}",
            target,
            *args,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DVC_NO_ANALYTICS": "1"},
    )


def pointer_files(world: World, commit_of: Path, name: str) -> Path:
    """What the review's pull and push jobs check out of a PR: its DVC pointer files only."""
    target = world.base / name
    target.mkdir()
    git(target, "init", "-q")
    for rel in ("dvc.yaml", "dvc.lock", "data.dvc"):
        shutil.copy2(commit_of / rel, target / rel)
    return target


def test_the_review_and_promotion_targets_move_only_verified_bytes(world: World) -> None:
    """review-pull -> repro (PR code) -> review-push -> merge -> promote, with real DVC."""
    base = world.clone("base")
    # A PR that changes the data: its model is new, its outputs are on no remote yet.
    pr = world.clone("pr")
    (pr / "data" / "corpus.csv").parent.mkdir(exist_ok=True)
    dvc(pr, "pull", "-q", "data")
    (pr / "data" / "corpus.csv").write_text("text,label\nfine,1\nbad,0\nmore,1\n")
    dvc(pr, "add", "-q", "data")
    dvc(pr, "repro", "-q")
    commit_all(pr, "more data")
    dvc(pr, "push", "-q", "-r", "review", "data.dvc")  # README: the author pushes the new data

    # pull job: base's DVC and config, the PR's pointer files only.
    inputs = pointer_files(world, pr, "pull")
    (inputs / ".dvc").mkdir()
    (inputs / ".dvc" / "config").write_text("[core]\n    remote = nowhere-the-pr-chose\n")
    pulled = make(base, "review-pull", REVIEW_DIR=str(inputs))
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (inputs / ".dvc" / "config").read_text() == (base / ".dvc" / "config").read_text()
    assert (inputs / "data" / "corpus.csv").read_text() == (pr / "data" / "corpus.csv").read_text()
    model = lock_md5(pr, "out/model")
    assert not object_path(world.remote("review"), model).exists()  # built only by the PR

    # repro job (PR code, no secrets): the review-inputs artifact, then `dvc repro`.
    runner = world.clone("runner")
    git(runner, "fetch", "-q", str(pr), "HEAD")
    git(runner, "checkout", "-q", "FETCH_HEAD")
    shutil.copytree(inputs / "data", runner / "data")
    shutil.copytree(inputs / ".dvc" / "cache", runner / ".dvc" / "cache")
    dvc(runner, "repro", "-q")
    assert lock_md5(runner, "out/model") == model
    # push job: base's DVC re-hashes the runner's cache (the review-outputs artifact), pushes.
    outputs = pointer_files(world, runner, "push")
    shutil.copytree(runner / ".dvc", outputs / ".dvc")
    tampered = object_path(
        outputs / ".dvc" / "cache", md5((runner / "out/model/weights.bin").read_bytes())
    )
    honest = tampered.read_bytes()
    overwrite(tampered, b"weights a PR job swapped in")
    refused = make(base, "review-push", REVIEW_DIR=str(outputs))
    assert refused.returncode != 0 and "is corrupt or tampered" in refused.stderr
    assert not object_path(world.remote("review"), model).exists(), "nothing was pushed"
    overwrite(tampered, honest)
    pushed = make(base, "review-push", REVIEW_DIR=str(outputs))
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert object_path(world.remote("review"), model).exists()

    # Merge, then promote on main: verified review -> release.
    git(base, "fetch", "-q", str(pr), "HEAD")
    git(base, "merge", "-q", "--ff-only", "FETCH_HEAD")
    promoted = make(base, "promote")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert object_path(world.remote("release"), model).exists()
    released = world.clone("released")
    git(released, "fetch", "-q", str(pr), "HEAD")
    git(released, "checkout", "-q", "FETCH_HEAD")
    dvc(released, "pull", "-q", "-r", "release")
    assert verify(released, "-r", "release", "--dvc-files").exit_code == 0


def test_promote_refuses_a_tampered_review_remote(world: World) -> None:
    tamper_remote_object(world, "out/model/weights.bin")
    base = world.clone("base")
    result = make(base, "promote")
    assert result.returncode != 0
    assert "out/model: file weights.bin" in result.stderr and "corrupt or tampered" in result.stderr
    assert not world.remote("release").exists(), "nothing reached the release remote"
