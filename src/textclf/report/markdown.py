"""Markdown building blocks for a GitHub comment: escaped text, tables that cut, Mermaid charts."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from textclf.outputs import headline

ZWSP = "\u200b"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
# An @mention (user or org/team) or a #123 / owner/repo#123 reference GitHub would act on.
_MENTION = re.compile(r"(?<![\w@])@(?=[A-Za-z0-9])")
_REFERENCE = re.compile(r"#(?=\d)")
_MERMAID_UNSAFE = re.compile(r"[^\w .,%()+\-/:=]")


def esc(text: object, limit: int | None = None) -> str:
    """Plain text safe inside a Markdown table cell: no markup, HTML, @mentions or #references."""
    s = " ".join(str(text).split())
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)].rstrip() + "…"
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    # A zero-width space keeps GitHub from notifying @user or linking #123 from tweet text.
    return s.replace("@", "@" + ZWSP).replace("#", "#" + ZWSP)


def defang(markdown: str) -> str:
    """Markdown in which no @mention notifies anyone and no #123 links to an issue.

    The review posts text a pull request controls (branch names, data, embedded reports): a
    zero-width space after ``@`` and ``#`` keeps it readable and inert. Idempotent.
    """
    return _REFERENCE.sub("#" + ZWSP, _MENTION.sub("@" + ZWSP, markdown))


def code(text: object) -> str:
    """An inline code span that survives backticks and pipes in the text."""
    s = " ".join(str(text).split()).replace("|", "\\|")
    fence = "``" if "`" in s else "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def fmt(value: object) -> str:
    """A number as :func:`textclf.outputs.headline.fmt` writes it; other values escaped."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        return esc(value)
    return headline.fmt(value)


signed = headline.signed


@dataclass
class Table:
    """A Markdown table that keeps its first ``max_rows`` rows and says how many it cut."""

    headers: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    align: str = ""  # one of l, r, c per column; default: first left, others right

    def render(self, max_rows: int | None = None, what: str = "rows") -> list[str]:
        """The table's lines, followed by a note when rows were cut."""
        if not self.rows:
            return []
        align = self.align or "l" + "r" * (len(self.headers) - 1)
        marks = {"l": "---", "r": "---:", "c": ":---:"}
        lines = [
            "| " + " | ".join(self.headers) + " |",
            "|" + "|".join(marks[a] for a in align) + "|",
        ]
        shown = self.rows if max_rows is None else self.rows[:max_rows]
        lines += ["| " + " | ".join(row) + " |" for row in shown]
        cut = len(self.rows) - len(shown)
        if cut:
            lines += [
                "",
                f"_… {cut} more {what} not shown (kept under GitHub's comment size "
                "limit; the full files are in the workflow artifacts)._",
            ]
        return lines


def _label(text: object) -> str:
    return _MERMAID_UNSAFE.sub(" ", str(text)).strip() or "?"


def _axis(values: Sequence[float], clamp01: bool) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    span = hi - lo
    pad = span * 0.15 if span > 0 else max(abs(hi) * 0.1, 0.05)
    lo, hi = lo - pad, hi + pad
    if clamp01:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    elif min(values) >= 0:
        lo = max(lo, 0.0)
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9))) / 2
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def _nums(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def xychart(
    title: str,
    x_labels: Sequence[object],
    y_label: str,
    bars: Sequence[Sequence[float]] = (),
    lines: Sequence[Sequence[float]] = (),
    clamp01: bool = False,
) -> list[str]:
    """A Mermaid ``xychart-beta`` (rendered natively by GitHub): bar and line series."""
    series = [list(s) for s in (*bars, *lines)]
    values = [v for s in series for v in s if math.isfinite(v)]
    if not values or not x_labels:
        return []
    lo, hi = _axis(values, clamp01)
    labels = ", ".join(f'"{_label(x)}"' for x in x_labels)
    out = [
        "```mermaid",
        "xychart-beta",
        f'    title "{_label(title)}"',
        f"    x-axis [{labels}]",
        f'    y-axis "{_label(y_label)}" {lo:.4g} --> {hi:.4g}',
    ]
    out += [f"    bar {_nums(s)}" for s in bars]
    out += [f"    line {_nums(s)}" for s in lines]
    return [*out, "```"]


def downsample(points: Sequence[tuple[float, float]], most: int) -> list[tuple[float, float]]:
    """At most ``most`` evenly spaced points, always keeping the first and the last."""
    if len(points) <= most:
        return list(points)
    idx = sorted({round(i * (len(points) - 1) / (most - 1)) for i in range(most)})
    return [points[i] for i in idx]


def details(summary: str, body: list[str]) -> list[str]:
    """A collapsed ``<details>`` block (blank lines keep GitHub rendering the Markdown inside)."""
    if not body:
        return []
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>"]


def embed(text: str, max_rows: int | None, demote: int = 2) -> list[str]:
    """Foreign Markdown inside the report: headings ``demote`` levels down, tables cut.

    Each table keeps its header and its first ``max_rows`` rows, followed by a note.
    """
    out: list[str] = []
    rows = cut = 0
    for raw in [*text.splitlines(), ""]:
        line = raw
        is_row = line.lstrip().startswith("|")
        if not is_row and cut:
            out += ["", f"_… {cut} more rows not shown (kept under GitHub's comment size limit)._"]
        if not is_row:
            rows = cut = 0
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            line = "#" * min(level + demote, 6) + line[level:]
        elif is_row:
            rows += 1  # header and separator are rows 1 and 2
            if max_rows is not None and rows > max_rows + 2:
                cut += 1
                continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return out
