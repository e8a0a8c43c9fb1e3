"""Per-text descriptors for drift: length, words, non-letter share, URL/mention/hashtag/emoji.

Standard library only, so the service records the same descriptors with each prediction
(:mod:`textclf.serving.traffic`) as the drift reference profile holds
(:func:`textclf.monitoring.slices.text_features`, which is built from these functions).
"""

from __future__ import annotations

import re
from typing import TypedDict

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
MENTION = re.compile(r"(?<![\w@])@\w+")
# A hashtag needs a letter: "#1" or "&#39;" are not hashtags.
HASHTAG = re.compile(r"(?<![\w#&])#\d*[^\W\d]\w*")
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2300-\u23ff\u2b00-\u2bff]")

# Feature name -> (pattern, noun used in slice names such as ``has_url`` / ``no_url``).
FLAG_FAMILIES: dict[str, tuple[re.Pattern[str], str]] = {
    "has_url": (URL, "url"),
    "has_mention": (MENTION, "mention"),
    "has_hashtag": (HASHTAG, "hashtag"),
    "has_emoji": (EMOJI, "emoji"),
}


class Features(TypedDict):
    """The descriptors of one text, keyed as in the reference profile and the traffic log."""

    chars: int
    words: int
    non_letter_share: float
    has_url: bool
    has_mention: bool
    has_hashtag: bool
    has_emoji: bool


FEATURES = tuple(Features.__annotations__)


def char_count(text: str) -> int:
    """Characters in the text."""
    return len(text)


def word_count(text: str) -> int:
    """Whitespace-separated words in the text."""
    return len(text.split())


def non_letter_share(text: str) -> float:
    """Share of non-space characters that are not letters (digits, punctuation, symbols)."""
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return 0.0
    return sum(not c.isalpha() for c in visible) / len(visible)


def matches(pattern: re.Pattern[str], text: str) -> bool:
    """Whether the text contains ``pattern``."""
    return pattern.search(text) is not None


def describe(text: str) -> Features:
    """All descriptors of one text (the keys of :class:`Features`, in that order)."""
    return {
        "chars": char_count(text),
        "words": word_count(text),
        "non_letter_share": non_letter_share(text),
        "has_url": matches(URL, text),
        "has_mention": matches(MENTION, text),
        "has_hashtag": matches(HASHTAG, text),
        "has_emoji": matches(EMOJI, text),
    }
