"""Which commit of a pull request the GPU review may run, decided from the base branch's code.

``.github/workflows/review.yml`` runs on ``pull_request_target``, so this file and the workflow
come from the base branch, never from the pull request. The rules:

* a branch of this repository: every push is reviewed (its authors can push here anyway);
* a fork: only the commit a maintainer approved by adding the ``safe-to-test`` label, and
  exactly that commit (the event's head SHA, not the branch, which may move on). Any later push
  removes the label, so each new commit needs a new approval;
* other label events (and ``safe-to-test`` on a branch of this repository) start nothing.

Usage: ``PYTHONPATH=src python3 -m textclf.ci.approve`` reads ``$GITHUB_EVENT_PATH`` and
``$GITHUB_REPOSITORY`` and appends ``run``, ``sha``, ``fork``, ``unlabel`` and ``reason`` to
``$GITHUB_OUTPUT`` (or prints them).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABEL = "safe-to-test"
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class Decision:
    """What the review workflow does for one event."""

    run: bool
    sha: str
    fork: bool
    unlabel: bool
    reason: str

    def outputs(self) -> dict[str, str]:
        """The step outputs, as strings."""
        return {
            "run": str(self.run).lower(),
            "sha": self.sha,
            "fork": str(self.fork).lower(),
            "unlabel": str(self.unlabel).lower(),
            "reason": self.reason,
        }


def decide(event: dict[str, Any], repository: str) -> Decision:
    """The decision for a ``pull_request_target`` event payload in ``repository``."""
    pr = event.get("pull_request") or {}
    action = str(event.get("action") or "")
    sha = str((pr.get("head") or {}).get("sha") or "")
    if not _SHA.fullmatch(sha):
        raise ValueError(f"the event has no 40-hex pull_request.head.sha (got {sha!r})")
    head_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
    fork = head_repo != repository
    labels = {str(x.get("name")) for x in pr.get("labels") or [] if isinstance(x, dict)}
    added = str((event.get("label") or {}).get("name") or "")
    if not fork:
        if action == "labeled":
            return Decision(False, sha, False, False, f"label {added!r} changes nothing to review")
        return Decision(True, sha, False, False, f"branch of {repository}: {action}")
    if action == "labeled":
        if added == LABEL:
            return Decision(True, sha, True, False, f"fork commit {sha[:12]} approved ({LABEL})")
        return Decision(False, sha, True, False, f"label {added!r} is not an approval")
    return Decision(
        False,
        sha,
        True,
        LABEL in labels,
        f"fork commit {sha[:12]} waits for a maintainer: review the diff, then add the {LABEL} "
        "label (each new push needs a new approval)",
    )


def main() -> int:
    """Decide for the current event and write the step outputs."""
    event = json.loads(Path(os.environ["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))
    decision = decide(event, os.environ["GITHUB_REPOSITORY"])
    lines = [f"{key}={value}" for key, value in decision.outputs().items()]
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
