"""The behaviour suite (``behaviour.yaml``): what the tests are, and the cases they expand to.

Three kinds of test, after CheckList (Ribeiro et al., 2020):

- ``mft`` (minimum functionality): every case must be predicted as ``expect``.
- ``inv`` (invariance): a perturbation that should not matter (a URL, a mention, a hashtag, a
  typo, punctuation, another name) must leave the predicted label as it was.
- ``dir`` (directional): the second text of a pair must move ``away_from`` a label (its
  probability falls and it is no longer predicted) or ``towards`` one (rises and is predicted).

Templates hold ``{placeholders}`` filled from ``vocab``; every combination is a case, and a
test with more than ``max_cases`` keeps a seeded sample. Expansion and perturbation are pure
functions of the file, so the base's suite gives the same cases wherever it runs.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from textclf import yamlio
from textclf.config.base import validate
from textclf.errors import ConfigError

Perturbation = Literal["add_url", "add_mention", "add_hashtag", "typo", "punctuation", "swap_name"]
PERTURBATIONS: tuple[str, ...] = get_args(Perturbation)
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_WORD = re.compile(r"[A-Za-z]{4,}")
_HASHTAGS = ("travel", "news", "tbt", "photo", "monday", "weekend", "life", "today")
Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TestSpec(_Strict):
    """One test of the suite."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]*$",
        description="unique snake_case name (the PR report and the gate refer to it)",
    )
    type: Literal["mft", "inv", "dir"] = Field(
        description="mft (every case predicted as `expect`), inv (a perturbation keeps the "
        "label) or dir (the second text of each pair moves `away_from`/`towards` a label)"
    )
    description: str = Field("", description="what the test shows, in one sentence")
    min_pass_rate: Rate = Field(
        description="the share of cases that must pass, in [0, 1]; the gate fails a pull "
        "request on which a test falls below it while the base's model met it"
    )
    templates: list[str] = Field(
        default_factory=list, description="mft/inv: texts with {placeholders} from vocab"
    )
    texts: bool = Field(
        False, description="inv: also perturb the suite's `texts` (real-looking examples)"
    )
    perturb: Perturbation | None = Field(
        None, description=f"inv: the perturbation, one of {', '.join(PERTURBATIONS)}"
    )
    expect: str | None = Field(None, description="mft: the label every case must get")
    pairs: list[tuple[str, str]] = Field(
        default_factory=list,
        description="dir: [original, changed] template pairs sharing their placeholders",
    )
    away_from: str | None = Field(None, description="dir: the label the change must move from")
    towards: str | None = Field(None, description="dir: the label the change must move to")
    min_delta: Rate = Field(
        0.0, description="dir: the label's probability must move by more than this, in [0, 1]"
    )
    flip: bool = Field(
        True,
        description="dir: also require the changed text to lose (away_from) or get (towards) "
        "the label",
    )

    @model_validator(mode="after")
    def _fields_of_type(self) -> TestSpec:
        need = {
            "mft": ("expect", "templates"),
            "inv": ("perturb",),
            "dir": ("pairs",),
        }[self.type]
        missing = [k for k in need if not getattr(self, k)]
        if missing:
            raise ValueError(f"a {self.type} test needs {' and '.join(missing)}")
        if self.type == "inv" and not (self.templates or self.texts):
            raise ValueError("an inv test needs templates, or texts: true")
        if self.type == "dir" and (self.away_from is None) == (self.towards is None):
            raise ValueError("a dir test needs exactly one of away_from and towards")
        return self

    def labels_named(self) -> list[str]:
        """The labels this test's expectations name (empty: label-agnostic)."""
        return [x for x in (self.expect, self.away_from, self.towards) if x is not None]


class Suite(_Strict):
    """The whole ``behaviour.yaml``."""

    seed: int = Field(42, description="seed of the case sampling and the perturbations")
    max_cases: int = Field(
        200, ge=1, le=10_000, description="cases per test at most (a seeded sample beyond)"
    )
    vocab: dict[str, list[str]] = Field(
        default_factory=dict, description="placeholder name -> the words it takes"
    )
    names: list[str] = Field(
        default_factory=list,
        description="person names: swap_name replaces one of these with another",
    )
    texts: list[str] = Field(
        default_factory=list, description="real-looking texts that inv tests with texts: true use"
    )
    tests: list[TestSpec] = Field(min_length=1, description="the tests (at least one)")

    @field_validator("vocab")
    @classmethod
    def _vocab_words(cls, vocab: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, words in vocab.items():
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", key) or not words:
                raise ValueError(f"vocab '{key}' needs a snake_case name and at least one word")
        return vocab

    @model_validator(mode="after")
    def _consistent(self) -> Suite:
        names = [t.name for t in self.tests]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"test names must be unique; repeated: {twice}")
        known = set(self.vocab) | ({"name"} if self.names else set())
        for test in self.tests:
            used = [*test.templates, *(t for pair in test.pairs for t in pair)]
            unknown = sorted({p for t in used for p in _PLACEHOLDER.findall(t)} - known)
            if unknown:
                raise ValueError(
                    f"test '{test.name}' uses placeholder(s) {unknown} that vocab does not define"
                )
            for first, second in test.pairs:
                if _keys(first) != _keys(second):
                    raise ValueError(
                        f"test '{test.name}': the pair {[first, second]} must use the same "
                        "placeholders in the same order"
                    )
            if test.texts and not self.texts:
                raise ValueError(f"test '{test.name}' has texts: true but the suite has no texts")
            if test.perturb == "swap_name" and len(self.names) < 2:
                raise ValueError(f"test '{test.name}' swaps names: list at least two in names")
        return self


def _keys(template: str) -> list[str]:
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


@dataclass(frozen=True)
class Case:
    """One case: the text (and for inv/dir the changed text) a test predicts."""

    text: str
    changed: str | None = None


def read_suite_text(path: Path) -> str:
    """The text of a suite file; a missing one fails with the fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"{path} not found. Fix: restore it (`git checkout -- {path.name}`); the behaviour "
            "stage runs the tests it lists (docs/behaviour.md)."
        )
    return path.read_text(encoding="utf-8")


def parse_suite(text: str, source: str) -> Suite:
    """Validate a suite from its YAML text (the review reads the base's with ``git show``)."""
    return validate(Suite, yamlio.parse(text, source), source, what="suite keys")


def suite_digest(text: str) -> str:
    """sha256 of a suite file's bytes: which suite a result was measured with."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fill(template: str, suite: Suite) -> list[str]:
    """Every filling of the template's placeholders (one placeholder: one word each time)."""
    keys = _keys(template)
    words = {**suite.vocab, **({"name": suite.names} if suite.names else {})}
    out = []
    for combo in itertools.product(*(words[k] for k in keys)):
        mapping: dict[str, str] = dict(zip(keys, combo, strict=True))
        out.append(_PLACEHOLDER.sub(lambda m: mapping[m.group(1)], template))  # noqa: B023
    return out


def _rng(suite: Suite, test: TestSpec, salt: str = "") -> random.Random:
    digest = hashlib.sha256(f"{suite.seed}:{test.name}:{salt}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _sample(items: list[Any], suite: Suite, test: TestSpec) -> list[Any]:
    unique = list(dict.fromkeys(items))
    if len(unique) <= suite.max_cases:
        return unique
    return _rng(suite, test, "sample").sample(unique, suite.max_cases)


def _add_url(text: str, rng: random.Random, names: list[str]) -> str | None:
    return f"{text} https://t.co/{''.join(rng.choices(string.ascii_letters + string.digits, k=10))}"


def _add_mention(text: str, rng: random.Random, names: list[str]) -> str | None:
    return f"@{''.join(rng.choices(string.ascii_lowercase, k=8))} {text}"


def _add_hashtag(text: str, rng: random.Random, names: list[str]) -> str | None:
    return f"{text} #{rng.choice(_HASHTAGS)}"


def _typo(text: str, rng: random.Random, names: list[str]) -> str | None:
    """Two neighbouring letters of one word of four or more swapped (never the first)."""
    words = list(_WORD.finditer(text))
    if not words:
        return None
    word = rng.choice(words)
    i = word.start() + rng.randrange(1, len(word.group()) - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _punctuation(text: str, rng: random.Random, names: list[str]) -> str | None:
    stripped = text.rstrip(".!?")
    return stripped if stripped != text else f"{text}!"


def _swap_name(text: str, rng: random.Random, names: list[str]) -> str | None:
    found = [n for n in names if re.search(rf"\b{re.escape(n)}\b", text)]
    if not found:
        return None
    new = rng.choice([n for n in names if n != found[0]])
    return re.sub(rf"\b{re.escape(found[0])}\b", new, text)


_PERTURB: dict[str, Callable[[str, random.Random, list[str]], str | None]] = {
    "add_url": _add_url,
    "add_mention": _add_mention,
    "add_hashtag": _add_hashtag,
    "typo": _typo,
    "punctuation": _punctuation,
    "swap_name": _swap_name,
}


def perturb(text: str, how: str, rng: random.Random, names: list[str]) -> str | None:
    """The perturbed text, or None when the perturbation does not apply to it."""
    if how not in _PERTURB:
        raise ValueError(f"unknown perturbation {how!r}")
    return _PERTURB[how](text, rng, names)


def cases(suite: Suite, test: TestSpec) -> list[Case]:
    """The cases of one test, deterministic for a given suite file."""
    if test.type == "mft":
        return [
            Case(t)
            for t in _sample([x for t in test.templates for x in _fill(t, suite)], suite, test)
        ]
    if test.type == "dir":
        filled = []
        for first, second in test.pairs:
            filled += list(zip(_fill(first, suite), _fill(second, suite), strict=True))
        return [Case(a, b) for a, b in _sample(filled, suite, test)]
    sources = [x for t in test.templates for x in _fill(t, suite)]
    if test.texts:
        sources += suite.texts
    rng = _rng(suite, test, "perturb")
    out = []
    for text in _sample(sources, suite, test):
        assert test.perturb is not None  # an inv test has one (validated)
        changed = perturb(text, test.perturb, rng, suite.names)
        if changed is not None and changed != text:
            out.append(Case(text, changed))
    return out
