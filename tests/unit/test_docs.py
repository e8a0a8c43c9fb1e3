"""README.md is a newcomer's path and docs/ the reference: its size, the links, every page reached.

A relative link must name a file of the checkout, or a report the pipeline or ``make bench``
writes (a path under reports/ that dvc.yaml or :class:`textclf.repo_paths.RepoPaths` names), and
an anchor must name a heading of the linked page. Each check has a negative control.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from tests.conftest import REPO
from textclf.repo_paths import RepoPaths

README = REPO / "README.md"
DOCS = REPO / "docs"
README_LIMIT_BYTES = 15_000

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code: what GitHub renders as Markdown."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def link_targets(text: str) -> list[str]:
    """Every link target of a Markdown text (inline, image and reference links), in order."""
    prose = _prose(text)
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown text (duplicates get -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for raw in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", text), flags=re.M):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", raw)  # a link's text stays
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def generated_reports(root: Path = REPO) -> set[str]:
    """Paths under reports/ that the pipeline (dvc.yaml's outputs) or a command writes."""
    names: set[str] = set()
    stages = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for stage in stages.values():
        for key in ("outs", "metrics", "plots"):
            for out in stage.get(key) or []:
                names.update([out] if isinstance(out, str) else out)
    paths = RepoPaths(root)
    for name in dir(RepoPaths):
        if isinstance(getattr(RepoPaths, name), property):
            value = getattr(paths, name)
            if isinstance(value, Path):
                names.add(value.relative_to(root).as_posix())
    return {n for n in names if n.startswith("reports/")}


def broken_links(
    text: str, where: Path, root: Path = REPO, generated: set[str] | None = None
) -> list[str]:
    """The relative links of ``text`` (a Markdown file at ``where``) that lead nowhere."""
    generated = generated_reports(root) if generated is None else generated
    problems = []
    for target in link_targets(text):
        if SCHEME.match(target):  # https:, mailto:: not ours to check offline
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (where.parent / path_part).resolve() if path_part else where
        try:
            rel = resolved.relative_to(root.resolve()).as_posix()
        except ValueError:
            problems.append(f"{target}: outside the repository")
            continue
        if resolved != where and not resolved.exists():
            if rel not in generated:
                problems.append(f"{target}: {rel} does not exist and nothing generates it")
            continue
        if anchor and resolved.suffix == ".md":
            page = text if resolved == where else resolved.read_text(encoding="utf-8")
            if anchor not in anchors(page):
                problems.append(f"{target}: no heading #{anchor} in {rel}")
    return problems


def linked_files(text: str, where: Path) -> set[Path]:
    """The files that the relative links of ``text`` (at ``where``) point to."""
    return {
        (where.parent / t.partition("#")[0]).resolve()
        for t in link_targets(text)
        if not SCHEME.match(t) and t.partition("#")[0]
    }


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_stays_short() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT_BYTES, f"README.md is {size} bytes; move reference to docs/"


def test_every_relative_link_resolves() -> None:
    problems = {
        page.relative_to(REPO).as_posix(): broken
        for page in _pages()
        if (broken := broken_links(page.read_text(encoding="utf-8"), page))
    }
    assert problems == {}


def test_every_docs_page_is_linked_from_the_readme() -> None:
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "docs/ has no page"
    linked = linked_files(README.read_text(encoding="utf-8"), README)
    assert [p.name for p in pages if p.resolve() not in linked] == []


def test_the_generated_reports_the_docs_may_link_to() -> None:
    generated = generated_reports()
    assert {"reports/bench.md", "reports/model_card.md", "reports/pr/report.md"} <= generated
    assert all(name.startswith("reports/") for name in generated)


def test_the_link_checker_reports_what_is_broken() -> None:
    """Negative control: each kind of broken link is reported, and only those."""
    text = "\n".join(
        [
            "# Title",
            "## A `code` heading, with punctuation!",
            "[ok](../README.md#layout) [ok](serving.md) [ok](#title) [ok](https://example.com)",
            "[ok](#a-code-heading-with-punctuation) [ok](../reports/pr/report.md)",
            "![img](missing.png) [page](nope.md) [anchor](../README.md#no-such-heading)",
            "[report](../reports/not-generated.md) [out](../../outside.md)",
            "[here](#nowhere)",
            "[ref]: also-missing.md",
            "```bash",
            "# a comment, not a heading; [code](not-a-link.md)",
            "```",
            "and `[inline](not-a-link-either.md)` code",
        ]
    )
    found = broken_links(text, DOCS / "virtual.md")
    assert [p.split(":")[0] for p in found] == [
        "missing.png",
        "nope.md",
        "../README.md#no-such-heading",
        "../reports/not-generated.md",
        "../../outside.md",
        "#nowhere",
        "also-missing.md",
    ], found


def test_an_unlinked_page_is_found() -> None:
    """Negative control: a README without the link to a page does not link it."""
    text = README.read_text(encoding="utf-8").replace("(docs/int8.md)", "(docs/int8.md-gone)")
    linked = linked_files(text, README)
    assert (DOCS / "int8.md").resolve() not in linked
    assert (DOCS / "serving.md").resolve() in linked


def test_the_command_blocks_tests_run_are_where_they_read_them() -> None:
    """tests/serving/test_http.py runs docs/serving.md's curl examples and tests/e2e the
    README's experiment block (both slow): a moved block fails here, fast."""
    serving = (DOCS / "serving.md").read_text(encoding="utf-8")
    section = serving.split("## Serve the model", 1)[1].split("\n## ", 1)[0]
    curls = re.findall(r"^curl ", "\n".join(re.findall(r"```bash\n(.*?)```", section, re.S)), re.M)
    assert len(curls) >= 4
    readme = README.read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "dvc exp run" in b]
    assert blocks and "dvc exp run -S evaluate.calibration_bins=10 -n " in blocks[0]


def test_the_documented_multi_node_launch_parses_as_torchrun_reads_it() -> None:
    """docs/training.md's torchrun line is valid for torchrun and launches `textclf train`, the
    module tests/model/test_ddp.py launches the same way on one node."""
    from torch.distributed.run import get_args_parser

    training = (DOCS / "training.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```bash\n(.*?)```", training, re.S) if "torchrun" in b)
    (line,) = [ln for ln in block.replace("\\\n", " ").splitlines() if ln.startswith("torchrun")]
    argv = shlex.split(line.replace("$NODE_RANK", "1").replace("$MASTER", "10.0.0.1"))
    args = get_args_parser().parse_args(argv[1:])
    assert (args.nnodes, args.nproc_per_node, args.node_rank) == ("2", "4", 1)
    assert args.rdzv_endpoint == "10.0.0.1:29400"
    assert args.module and args.training_script == "textclf"
    assert args.training_script_args == ["train"]
