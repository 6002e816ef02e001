"""The arXiv API: ``GET {base}/api/query?search_query=...&start=...&max_results=...``.

The answer is an Atom feed with ``opensearch:totalResults``; pages are asked one
after another, one request every ``PAPERFEED_ARXIV_DELAY`` seconds (arXiv asks for
3 s). A day is the papers submitted in the configured categories on that UTC day.
``search_titles`` finds arXiv ids for titles (``paperfeed enrich``), several titles
per request.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..dumps import DumpError, ParsedPaper, normalise_title, parse_dump
from .http import Malformed, PoliteClient

_OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
_ATOM = "{http://www.w3.org/2005/Atom}"


def query_url(base_url: str, search_query: str, start: int, max_results: int, **extra) -> str:
    params = {"search_query": search_query, "start": start, "max_results": max_results, **extra}
    return f"{base_url}/api/query?{urlencode(params)}"


def parse_page(body: bytes) -> tuple[int, list[ParsedPaper]]:
    """``(totalResults, papers)`` of one Atom page. A page that does not parse raises
    ``ValueError`` (retried); an Atom error entry raises :class:`Malformed`."""
    try:
        root = SafeET.fromstring(body)
    except SafeET.ParseError as exc:
        raise ValueError(f"invalid XML: {exc}") from None
    except DefusedXmlException as exc:
        raise Malformed(f"refused unsafe XML: {exc}") from None
    if root.tag != f"{_ATOM}feed":
        raise Malformed(f"expected an Atom <feed>, found <{root.tag}>")
    entries = root.findall(f"{_ATOM}entry")
    # arXiv reports a bad query as a single entry whose id is .../api/errors#...
    if len(entries) == 1 and "/api/errors" in (entries[0].findtext(f"{_ATOM}id") or ""):
        raise Malformed(f"arXiv refused the query: {entries[0].findtext(f'{_ATOM}summary')}")
    total_text = (root.findtext(f"{_OPENSEARCH}totalResults") or "").strip()
    total = int(total_text) if total_text.isdigit() else len(entries)
    if not entries:
        return total, []
    try:
        return total, list(parse_dump(body, source="arXiv API", fmt="atom").papers)
    except DumpError as exc:
        raise Malformed(str(exc)) from None


def day_query(categories: tuple[str, ...], day: str) -> str:
    stamp = date.fromisoformat(day).strftime("%Y%m%d")
    cats = " OR ".join(f"cat:{c}" for c in categories)
    return f"({cats}) AND submittedDate:[{stamp}0000 TO {stamp}2359]"


def fetch_day(
    client: PoliteClient,
    base_url: str,
    categories: tuple[str, ...],
    day: str,
    *,
    page_size: int = 200,
    max_results: int = 2000,
) -> list[ParsedPaper]:
    """Every paper submitted on ``day`` in ``categories``, page after page.

    A page that comes back empty before ``totalResults`` is reached (arXiv does
    that under load) is asked again by the client's retry rules; a short day ends
    when the pages are done.
    """
    query = day_query(categories, day)
    papers: list[ParsedPaper] = []
    start, total = 0, None
    while total is None or start < min(total, max_results):
        url = query_url(
            base_url, query, start, page_size, sortBy="submittedDate", sortOrder="ascending"
        )

        def parse(body: bytes, start: int = start) -> tuple[int, list[ParsedPaper]]:
            found_total, page = parse_page(body)
            if not page and start < found_total:
                raise ValueError(f"an empty page at {start} of {found_total}")
            return found_total, page

        total, page = client.get(url, parse)
        if not page:
            break
        papers.extend(page)
        start += len(page)
    return papers


def search_titles(
    client: PoliteClient, base_url: str, titles: list[str]
) -> dict[str, tuple[str, dict]]:
    """Look ``titles`` up in one request: ``{norm_title: (arxiv_id, metadata)}`` for the
    titles arXiv has exactly (same normalised title); metadata has ``authors`` and
    ``published``."""
    wanted = {normalise_title(t): t for t in titles}
    clauses = [f'ti:"{norm}"' for norm in wanted if norm]
    if not clauses:
        return {}
    url = query_url(base_url, " OR ".join(clauses), 0, max(10, 3 * len(clauses)))
    _, papers = client.get(url, parse_page)
    found: dict[str, tuple[str, dict]] = {}
    for paper in papers:
        if paper.norm_title in wanted and paper.external_id and paper.norm_title not in found:
            arxiv_id = paper.external_id.removeprefix("arxiv:")
            found[paper.norm_title] = (
                arxiv_id,
                {"authors": list(paper.authors), "published": paper.published},
            )
    return found


def fetch_ids(client: PoliteClient, base_url: str, arxiv_ids: list[str]) -> dict[str, ParsedPaper]:
    """The papers with these bare arXiv ids, in one request (``id_list``): ``{id: paper}``
    for the ids arXiv knows (an unknown id is simply absent from the answer)."""
    if not arxiv_ids:
        return {}
    params = {"id_list": ",".join(arxiv_ids), "start": 0, "max_results": len(arxiv_ids)}
    _, papers = client.get(f"{base_url}/api/query?{urlencode(params)}", parse_page)
    wanted = set(arxiv_ids)
    found: dict[str, ParsedPaper] = {}
    for paper in papers:
        bare = (paper.external_id or "").removeprefix("arxiv:")  # parse_dump drops versions
        if bare in wanted:
            found.setdefault(bare, paper)
    return found
