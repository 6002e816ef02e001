"""Paper cards, rendered once per content and reused.

A feed page is twenty cards of the same shape, and rendering them through the
``_macros.html`` macros was most of a page's CPU (each card escapes a long
abstract and builds two URLs). A card's HTML depends only on what is passed
in (the paper's id, title, abstract, link, authors, links and reason, the
person's rating of it, the URL to come back to) plus the CSRF token of the session, so it is kept
per app in a bounded LRU keyed by exactly those values, with a random
placeholder where the token goes; the token is joined in on every use. A
rating, a new reason or another page is a different key, never a stale card.

A ranked card shows how well it matches: the score that settings' "Minimum
score" compares against, to one decimal (so a re-rank that moves a score in
the fourth decimal still finds the card kept), and a word for it
(:func:`match_label`).
"""

from __future__ import annotations

import operator
import secrets
import threading
from collections import OrderedDict

from flask import current_app, request
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

#: Cards kept per app: a few pages each for a few hundred people (~2 KB a card).
CACHE_SIZE = 4096

_FIELDS = ("paper_id", "title", "abstract", "url", "rating", "authors", "links", "reason", "score")
_ATTRS = operator.attrgetter(*_FIELDS)

#: Words for a score, from the highest band down. Scores are per-person z-scores (0: an
#: average candidate for this person; a page's best are usually above 1).
MATCH_LEVELS = ((1.0, "strong"), (0.5, "good"), (0.0, "fair"), (float("-inf"), "weak"))
#: The scale in words, for the settings page beside "Minimum score".
SCORE_SCALE = "0 is average for you, 0.5 a good match, 1 or more a strong one"
#: Reasons the pipeline gives papers it did not rank (no likes or topics yet, or rated):
#: their score of 0 means nothing, so they show no match.
UNRANKED_REASONS = frozenset(
    {"new in this dump", "new since the model was fitted", "you rated this"}
)


def match_label(score: float | None, reason: str | None = None) -> dict | None:
    """``{"level": "strong", "text": "strong match · 1.3"}`` for a ranked paper, else None."""
    if score is None or reason is None or reason in UNRANKED_REASONS:
        return None
    score = round(float(score), 1)  # the level of the number shown
    level = next(name for bound, name in MATCH_LEVELS if score >= bound)
    return {"level": level, "text": f"{level} match · {score:.1f}"}


def _shown_score(score: float | None, reason: str | None) -> str | None:
    """The score as the card shows it (part of its cache key): one decimal, None if unranked."""
    return None if match_label(score, reason) is None else f"{score:.1f}"


class CardCache:
    """The ``paper_cards`` template global of one app; see the module docstring."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        # Unguessable, so no title or abstract can contain it by accident or design.
        self.slot = f"csrf-{secrets.token_hex(16)}"
        self._cards: OrderedDict[tuple, tuple[str, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, papers, next_url: str, show_reason: bool = True) -> Markup:
        """The cards of ``papers`` (FeedItems or dicts), in order, as one piece of HTML."""
        token = generate_csrf()
        root = request.script_root
        # With templates reloading (debug), an edited macro must show at once: no keeping.
        keep = not current_app.jinja_env.auto_reload
        out = []
        for paper in papers:
            if isinstance(paper, dict):
                values = [paper.get(name) for name in _FIELDS]
            else:
                values = list(_ATTRS(paper))
            if not show_reason:
                values[-2] = None
            values[-1] = _shown_score(values[-1], values[-2])
            key = (root, next_url, *map(_hashable, values))
            with self._lock:
                parts = self._cards.get(key) if keep else None
                if parts is not None:
                    self._cards.move_to_end(key)
            if parts is None:
                parts = self._render(values, next_url)
                if keep:
                    with self._lock:
                        self._cards[key] = parts
                        while len(self._cards) > self.size:
                            self._cards.popitem(last=False)
            out.append(token.join(parts))
        # The token is URL-safe base64 and dots: nothing in it needs escaping.
        return Markup("".join(out))

    def _render(self, values: list, next_url: str) -> tuple[str, ...]:
        macro = current_app.jinja_env.get_template("_macros.html").module.paper_card
        card = dict(zip(_FIELDS, values, strict=True))
        card["match"] = card["score"] and match_label(float(card["score"]), card["reason"])
        html = str(macro(card, next_url, self.slot))
        return tuple(html.split(self.slot))

    def __len__(self) -> int:
        return len(self._cards)


def _hashable(value):
    """A card's key part: authors (a list) and links (a dict) as tuples."""
    if isinstance(value, dict):
        return tuple(sorted(value.items()))
    if isinstance(value, list):
        return tuple(value)
    return value
