"""Author names as keys: how a followed author is matched to the papers they write.

"Müller", "Muller" and "MÜLLER" are one key (accents folded, case and spacing ignored), so
a follow made on a paper that spells the name one way finds papers that spell it another.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_NOT_NAME = re.compile(r"[^\w\s-]", re.UNICODE)
#: Letters NFKD does not split into a base letter and a mark.
_FOLD = str.maketrans({"ø": "o", "ł": "l", "ß": "ss", "æ": "ae", "đ": "d", "ı": "i", "œ": "oe"})


def author_key(name: str) -> str:
    """``"  Jörg  Müller "`` -> ``"jorg muller"``: the identity of an author name."""
    text = unicodedata.normalize("NFKD", name.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c)).translate(_FOLD)
    text = _NOT_NAME.sub(" ", text).replace("-", " ")
    return " ".join(text.split())


def followed_author(authors: Iterable[str], follows: dict[str, str]) -> str | None:
    """The first of ``authors`` whose key is followed (``follows``: key -> name), as the
    paper writes it; None if the person follows none of them."""
    for name in authors:
        if author_key(name) in follows:
            return name
    return None
