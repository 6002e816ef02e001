"""Muted keywords: which papers a person never wants to see.

A muted word hides a paper when its title or abstract contains a word that
*starts with* it, ignoring case: "benchmark" hides "benchmarks" and
"benchmarking", "diffusion" hides "diffusion-based". A muted word that ends in
a plural or verb ending is cut back to its stem first, so "benchmarks" hides
"benchmark" too. Very short words (three letters or fewer after stemming, such
as "LLM", "GAN" or "art") hide only themselves and their plurals ("LLMs"), or
"art" would hide "article" and "artificial". A phrase ("large language model")
matches with any spacing or hyphens between its words, its last word by the same
rules. Matches start at a word start: "LLM" does not hide "MLLM".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

#: Endings cut from a muted word before matching (longest first); never below MIN_STEM.
ENDINGS = ("ing", "ies", "es", "ed", "s")
#: Shorter stems match as whole words (plus a plural), not as prefixes.
MIN_PREFIX = 4
MIN_STEM = 3


def stem(word: str) -> str:
    """``word`` without one common English ending, if enough of it is left.

    >>> stem("benchmarks"), stem("LLMs"), stem("studies"), stem("gas")
    ('benchmark', 'LLM', 'stud', 'gas')
    """
    lower = word.lower()
    for ending in ENDINGS:
        if lower.endswith(ending) and len(word) - len(ending) >= MIN_STEM:
            return word[: -len(ending)]
    return word


def _word_pattern(word: str, last: bool) -> str:
    if not last:
        return re.escape(word)
    root = stem(word)
    if len(root) >= MIN_PREFIX:
        return re.escape(root) + r"\w*"
    # Short: the word as typed, or its stem with a plural ending, as a whole word.
    return rf"(?:{re.escape(word)}|{re.escape(root)})(?:e?s)?(?!\w)"


def muted_pattern(words: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of ``words`` by the module's rules.

    Blank entries are ignored; None when nothing is left to mute.
    """
    alternatives = []
    for entry in words:
        parts = str(entry).split()
        if not parts:
            continue
        pieces = [_word_pattern(p, i == len(parts) - 1) for i, p in enumerate(parts)]
        alternatives.append(r"[\s\-]+".join(pieces))
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + ")", re.IGNORECASE)


def is_muted(pattern: re.Pattern[str] | None, title: str, abstract: str) -> bool:
    """True when the paper's title or abstract matches ``pattern`` (None mutes nothing)."""
    return pattern is not None and pattern.search(f"{title}\n{abstract}") is not None


def muted_filter(muted_json: str | None) -> Callable[[dict], bool] | None:
    """A test ``paper -> bool`` for a person's muted keywords as stored (a JSON list).

    ``paper`` has ``title`` and ``abstract``. None when nothing is muted (or the
    stored value is not a JSON list), so callers can skip reading abstracts.
    """
    try:
        words = json.loads(muted_json or "[]")
    except (TypeError, ValueError):
        return None
    if not isinstance(words, list):
        return None
    pattern = muted_pattern(str(w) for w in words)
    if pattern is None:
        return None
    return lambda paper: is_muted(pattern, paper["title"], paper["abstract"])
