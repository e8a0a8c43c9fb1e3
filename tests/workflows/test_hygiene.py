"""Repository hygiene the review relies on: CODEOWNERS, Dependabot, a secret scan that passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

BIN = Path(sys.executable).parent
CODEOWNERS = REPO / ".github" / "CODEOWNERS"
#: What a PR must not change without the owners' approval: the workflows, the deploy manifests,
#: the gate, the data expectations and the pipeline definition (DESIGN.md), plus what the
#: credential jobs run.
GUARDED = {
    "/.github/",
    "/deploy/",
    "/gate.yaml",
    "/data.expectations.yaml",
    "/dvc.yaml",
    "/Makefile",
    "/.dvc/config",
}


def owners() -> dict[str, list[str]]:
    rules = {}
    for line in CODEOWNERS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pattern, *people = line.split()
            rules[pattern] = people
    return rules


def test_codeowners_guard_what_decides_what_ships() -> None:
    rules = owners()
    assert set(rules) >= GUARDED, f"unguarded: {GUARDED - set(rules)}"
    for pattern, people in rules.items():
        assert people and all(p.startswith("@") for p in people), pattern
        assert (REPO / pattern.strip("/")).exists(), f"CODEOWNERS names a missing path {pattern}"


def test_dependabot_updates_pins_and_packages_and_is_valid() -> None:
    path = REPO / ".github" / "dependabot.yml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert {u["package-ecosystem"] for u in config["updates"]} == {"github-actions", "pip"}
    pip = next(u for u in config["updates"] if u["package-ecosystem"] == "pip")
    assert {"dependency-name": "torch"} in pip["ignore"]  # pinned exactly on purpose
    proc = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _scan(root: Path) -> subprocess.CompletedProcess[str]:
    """`make secrets` (the scan `make lint`, CI and pre-commit run) in ``root``."""
    return subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(root),
            "-f",
            str(REPO / "Makefile"),
            f"VENV={REPO / '.venv'}",
            "secrets",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_secret_scan_passes_on_the_repository() -> None:
    proc = _scan(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_secret_scan_catches_a_committed_key(tmp_path: Path) -> None:
    """Negative control: a clone with a real-looking AWS key added fails the same scan."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    os.utime(clone / "pyproject.toml", (0, 0))  # not newer than .venv/.installed: no reinstall
    leak = clone / "src" / "textclf" / "settings_local.py"
    key = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEYzq"  # whole only in the clone
    leak.write_text(f'AWS_SECRET_ACCESS_KEY = "{key}"\n')
    proc = _scan(clone)
    assert proc.returncode != 0
    assert "settings_local.py" in proc.stdout


def test_the_baseline_excludes_only_generated_hash_files() -> None:
    baseline = json.loads((REPO / ".secrets.baseline").read_text(encoding="utf-8"))
    excluded = [
        f["pattern"]
        for f in baseline["filters_used"]
        if f["path"] == "detect_secrets.filters.regex.should_exclude_file"
    ]
    assert excluded == [["^(reports/.*\\.(json|md)|dvc\\.lock|.*\\.dvc|\\.secrets\\.baseline)$"]]
    assert baseline["results"] == {}, "mark false positives inline: # pragma: allowlist secret"
