"""Feed items: one paper as shown to one person, and how a ranked row becomes one."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from .. import reasons, store


@dataclass(frozen=True)
class FeedItem:
    """One paper as shown to one person."""

    paper_id: int
    title: str
    abstract: str
    url: str | None
    score: float
    reason: str  # the words (recommender.reasons.describe) of ``reason_kind``
    because_paper_id: int | None
    terms: tuple[str, ...]
    rating: int | None
    dump_id: int | None
    dump_date: str | None
    authors: tuple[str, ...] = ()
    arxiv_id: str | None = None
    #: {"abs", "pdf", "hf"}: each only where known (recommender.store.paper_links)
    links: dict = field(default_factory=dict)
    published: str | None = None
    #: what the reason is (a kind of recommender.reasons); the words are in ``reason``
    reason_kind: str = reasons.RANKED
    #: the share of the person's own likes this paper scores at least as high as (None:
    #: unranked, or fewer than two likes to compare with)
    match: float | None = None
    #: the keyword topic it matches (reason kind "topic")
    topic: str | None = None
    #: the followed author, as the paper names them (reason kind "followed")
    followed_author: str | None = None
    #: the source's one-line summary (Hugging Face's ai_summary), shown labelled as theirs
    tldr: str | None = None
    #: the source's thumbnail image URL (shown only where PAPERFEED_REMOTE_IMAGES allows)
    thumbnail: str | None = None
    #: the interest whose section lists it (None: the person has one interest)
    section: str | None = None

    def as_dict(self) -> dict:
        data = asdict(self)
        data["terms"] = list(self.terms)
        data["authors"] = list(self.authors)
        if self.section is None:  # one interest: the item as it always was
            del data["section"]
        return data


def ranked_item(paper: dict, ranked, because: int | None, papers: dict, rating) -> FeedItem:
    """A ranked paper as shown: its reason in words, made here from the reason's data."""
    kind = ranked.kind
    if kind == reasons.LIKED and because is None:  # the liked paper is gone: say less
        kind = reasons.RANKED
    words = reasons.describe(
        kind,
        because_title=papers[because]["title"] if because is not None else None,
        terms=ranked.terms,
        topic=ranked.topic,
    )
    return _feed_item(
        paper, ranked.score, words, kind, because, ranked.terms, rating, ranked.match, ranked.topic
    )


def followed_item(paper: dict, author: str) -> FeedItem:
    """A paper by an author the person follows: on top of its day, whatever its score."""
    words = reasons.describe(reasons.FOLLOWED, author=author)
    item = _feed_item(paper, 0.0, words, reasons.FOLLOWED, None, (), None, None, None)
    return replace(item, followed_author=author)


def unranked_item(paper: dict, kind: str, rating) -> FeedItem:
    return _feed_item(paper, 0.0, reasons.describe(kind), kind, None, (), rating, None, None)


def _feed_item(paper: dict, score, words, kind, because, terms, rating, match, topic) -> FeedItem:
    authors = paper.get("authors")
    return FeedItem(
        paper_id=paper["id"],
        title=paper["title"],
        abstract=paper["abstract"],
        url=paper["url"],
        score=round(float(score), 4),
        reason=words,
        because_paper_id=because,
        terms=tuple(terms),
        rating=rating,
        dump_id=paper["first_dump_id"],
        dump_date=paper["dump_date"],
        authors=tuple(json.loads(authors)) if isinstance(authors, str) else tuple(authors or ()),
        arxiv_id=paper.get("arxiv_id"),
        links=store.paper_links(paper),
        published=paper.get("published"),
        reason_kind=kind,
        match=match,
        tldr=paper.get("ai_summary"),
        thumbnail=paper.get("thumbnail"),
        topic=topic,
    )
