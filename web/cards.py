"""Paper cards, rendered once per content and reused.

A feed page is twenty cards of the same shape, and rendering them through the
``_macros.html`` macros was most of a page's CPU (each card escapes a long
abstract and builds two URLs). A card's HTML depends only on what is passed
in (the paper's id, title, abstract, link, authors, links and reason, the
person's rating of it, the URL to come back to) plus the CSRF token of the session, so it is kept
per app in a bounded LRU keyed by exactly those values, with a random
placeholder where the token goes; the token is joined in on every use. A
rating, a new reason or another page is a different key, never a stale card.

A ranked card shows how well it matches, compared with the person's own
likes (:func:`match_label`), rounded so that a re-rank that moves it a
little still finds the card kept.
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

_FIELDS = (
    "paper_id",
    "title",
    "abstract",
    "url",
    "rating",
    "authors",
    "links",
    "tldr",
    "thumbnail",
    "reason",  # the last two: cleared where reasons are not shown (see __call__)
    "match",
)
_ATTRS = operator.attrgetter(*_FIELDS)

#: Words for a match, from the highest band down: the share of the person's own likes that
#: their taste model scores at most as high as the paper (recommender.reasons.Ranked.match).
#: "Strong" means as good as a typical paper they liked, so it is rare and true.
MATCH_LEVELS = ((0.5, "strong"), (0.2, "good"), (0.05, "fair"), (float("-inf"), "weak"))
#: The scale in words, for the settings page beside "Minimum score".
SCORE_SCALE = "0 is average for you, 0.5 a good match, 1 or more a strong one"


def match_label(match: float | None) -> dict | None:
    """``{"level": "strong", "text": "strong match", "title": ...}`` for a ranked paper
    compared with the person's own likes, else None (unranked, or too few likes)."""
    if match is None:
        return None
    share = round(float(match), 2)  # the key part: a tiny move keeps the card
    level = next(name for bound, name in MATCH_LEVELS if share >= bound)
    return {
        "level": level,
        "text": f"{level} match",
        "title": f"Scores as high as {share:.0%} of the papers you liked",
    }


class CardCache:
    """The ``paper_cards`` template global of one app; see the module docstring."""

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        # Unguessable, so no title or abstract can contain it by accident or design.
        self.slot = f"csrf-{secrets.token_hex(16)}"
        self._cards: OrderedDict[tuple, tuple[str, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(
        self, papers, next_url: str, show_reason: bool = True, interests=(), section=None
    ) -> Markup:
        """The cards of ``papers`` (FeedItems or dicts), in order, as one piece of HTML.

        ``interests``: the person's ``{"key", "name"}`` interests, for the like form's choice
        of where a like is filed (``section`` preselected); none when they have one.
        """
        choices = tuple((i["key"], i["name"]) for i in interests)
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
                values[-2] = values[-1] = None
            elif values[-1] is not None:
                values[-1] = round(float(values[-1]), 2)
            key = (root, next_url, choices, section, *map(_hashable, values))
            with self._lock:
                parts = self._cards.get(key) if keep else None
                if parts is not None:
                    self._cards.move_to_end(key)
            if parts is None:
                parts = self._render(values, next_url, choices, section)
                if keep:
                    with self._lock:
                        self._cards[key] = parts
                        while len(self._cards) > self.size:
                            self._cards.popitem(last=False)
            out.append(token.join(parts))
        # The token is URL-safe base64 and dots: nothing in it needs escaping.
        return Markup("".join(out))

    def _render(self, values: list, next_url: str, choices=(), section=None) -> tuple[str, ...]:
        macro = current_app.jinja_env.get_template("_macros.html").module.paper_card
        card = dict(zip(_FIELDS, values, strict=True))
        card["match"] = match_label(card["match"])
        html = str(macro(card, next_url, self.slot, choices, section))
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
