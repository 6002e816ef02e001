"""Hugging Face Daily Papers: ``GET {base}/api/daily_papers?date=YYYY-MM-DD``.

The response is a JSON list, one item per paper on that day's page::

    [{"paper": {"id": "2511.01234", "title": ..., "summary": ...,
                "authors": [{"name": ...}, ...], "publishedAt": ..., "upvotes": 12, ...},
      "title": ..., "summary": ..., "publishedAt": ..., "numComments": 3, ...}, ...]

Every field may be missing: the title and abstract fall back from the item to its
``paper`` and back; an item with neither a title nor an id is skipped (and counted);
authors without a name, a non-numeric upvote count or an id that is not an arXiv id
are dropped rather than stored wrong.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from ..dumps import ParsedPaper, normalise_title
from ..store import arxiv_id_of
from .http import Malformed, PoliteClient

HF_PAPER_PAGE = "https://huggingface.co/papers/"


def daily_papers_url(base_url: str, day: str) -> str:
    return f"{base_url}/api/daily_papers?{urlencode({'date': day})}"


def _text(*values) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return ""


def parse_daily_papers(body: bytes) -> tuple[list[ParsedPaper], int]:
    """Papers of one day's response, and how many items were skipped.

    Raises ``ValueError`` for JSON that does not parse (a truncated body: retried) and
    :class:`Malformed` for JSON that is not a list of items.
    """
    data = json.loads(body.decode("utf-8"))
    if isinstance(data, dict) and "error" in data:
        raise Malformed(f"the API answered an error: {str(data['error'])[:200]}")
    if not isinstance(data, list):
        raise Malformed(f"expected a JSON list of papers, got a JSON {type(data).__name__}")
    papers, skipped = [], 0
    for position, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            skipped += 1
            continue
        paper = item.get("paper") if isinstance(item.get("paper"), dict) else {}
        raw_id = paper.get("id") if isinstance(paper.get("id"), str) else None
        arxiv_id = arxiv_id_of(raw_id)
        title = _text(item.get("title"), paper.get("title"))
        if not title or not normalise_title(title):
            skipped += 1
            continue
        authors = tuple(
            _text(a.get("name"))
            for a in (paper.get("authors") if isinstance(paper.get("authors"), list) else [])
            if isinstance(a, dict) and _text(a.get("name"))
        )
        upvotes = paper.get("upvotes")
        thumbnail = item.get("thumbnail") or paper.get("thumbnail")
        papers.append(
            ParsedPaper(
                title=title,
                abstract=_text(paper.get("summary"), item.get("summary")),
                external_id=f"arxiv:{arxiv_id}" if arxiv_id else None,
                url=None,  # the store derives the abs and PDF links from the arXiv id
                authors=authors,
                published=_text(paper.get("publishedAt"), item.get("publishedAt")) or None,
                line=position,
                upvotes=upvotes if isinstance(upvotes, int) and upvotes >= 0 else None,
                hf_url=HF_PAPER_PAGE + arxiv_id if arxiv_id else None,
                ai_summary=_text(paper.get("ai_summary"), item.get("ai_summary")) or None,
                thumbnail=thumbnail
                if isinstance(thumbnail, str) and thumbnail.startswith("https://")
                else None,
            )
        )
    return papers, skipped


def fetch_day(client: PoliteClient, base_url: str, day: str) -> tuple[list[ParsedPaper], int]:
    """One day's papers from the API (one request, retried by ``client``)."""
    return client.get(daily_papers_url(base_url, day), parse_daily_papers)
