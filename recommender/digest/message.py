"""The message: one digest's multipart (text + HTML) email, its links and subject."""

from __future__ import annotations

import json
import secrets
import textwrap
from datetime import date, datetime
from email.message import Message
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from ..config import Settings
from ..dumps import strip_unrenderable
from ..mail import TEMPLATES, build_message, message_domain, render_email
from ..tokens import make_token

#: Abstracts in the email are cut to about this many characters, at a word boundary.
ABSTRACT_CHARS = 320


@lru_cache(maxsize=4096)
def shorten(text: str, limit: int = ABSTRACT_CHARS) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,.;:")
    return cut + "…"


@lru_cache(maxsize=4096)
def _wrapped_abstract(abstract: str) -> str:
    # The same paper goes to thousands of people in one run: wrap it once.
    return textwrap.fill(shorten(abstract), width=72, initial_indent="   ", subsequent_indent="   ")


def _authors_line(authors_json: str | None, shown: int = 4) -> str:
    """``A, B, C, D et al.`` from a papers row's JSON author list ('' if none)."""
    try:
        names = [str(n) for n in json.loads(authors_json or "[]")]
    except (TypeError, ValueError):
        return ""
    return ", ".join(names[:shown]) + (" et al." if len(names) > shown else "")


def _is_http(url: str | None) -> bool:
    # Dumps are third-party text: never put a javascript: or data: URL in an email.
    return bool(url) and urlsplit(url).scheme in {"http", "https"}


def subject_for(period: str, count: int) -> str:
    """E.g. ``paperfeed digest for Mon 10 Mar 2025: 7 new papers``."""
    day = date.fromisoformat(period)
    noun = "paper" if count == 1 else "papers"
    return f"paperfeed digest for {day:%a} {day.day} {day:%b %Y}: {count} new {noun}"


def new_message_id(settings: Settings, user_id: int, period: str) -> str:
    """A fresh, globally unique ``Message-ID``; stored on the ledger row and reused on resends."""
    return f"<digest.{period}.{user_id}.{secrets.token_hex(6)}@{message_domain(settings)}>"


def unsubscribe_url(settings: Settings, secret: str, user_id: int, email: str) -> str:
    return f"{settings.base_url}/unsubscribe/{make_token(secret, 'unsubscribe', [user_id, email])}"


def rate_token(secret: str, user_id: int, digest_id: int) -> str:
    """One signed token per digest: it lets its person rate the papers of that digest."""
    return make_token(secret, "rate", [user_id, digest_id])


def rate_url(settings: Settings, token: str, paper_id: int, value: int) -> str:
    """``/r/<token>/<paper>/like`` (or ``dislike``): the paper and choice are checked
    against the digest the token names, so only that digest's papers can be rated."""
    choice = "like" if value > 0 else "dislike"
    return f"{settings.base_url}/r/{token}/{paper_id}/{choice}"


def render_digest(
    settings: Settings,
    digest: dict,
    papers: list[dict],
    *,
    secret: str,
    templates: Path = TEMPLATES,
) -> Message:
    """The multipart (text + HTML) message for one ledger row and its papers.

    ``digest`` is a ``digests`` row (user_id, recipient, period, message_id,
    created_at); ``papers`` are :func:`recommender.store.digest_papers` rows.
    Everything in it derives from the row, so a resend is the same message.
    """
    uid = digest["user_id"]
    unsubscribe = unsubscribe_url(settings, secret, uid, digest["recipient"])
    # 21 links, 2 tokens: signing each link cost ~40 µs, a sixth of a digest's CPU.
    token = rate_token(secret, uid, digest.get("id") or 0)
    # Text stored before ingest stripped control characters must not reach the mail either.
    papers = [
        {
            **p,
            "title": strip_unrenderable(p["title"]),
            "abstract": strip_unrenderable(p["abstract"]),
        }
        for p in papers
    ]
    # Interests: one section each, in the order they first appear (the best paper first).
    order = {s: n for n, s in enumerate(dict.fromkeys(p.get("section") for p in papers))}
    papers.sort(key=lambda p: order[p.get("section")])
    context = {
        "subject": digest["subject"] or subject_for(digest["period"], len(papers)),
        "period": digest["period"],
        "recipient": digest["recipient"],
        "base_url": settings.base_url,
        "unsubscribe_url": unsubscribe,
        "papers": [
            {
                "title": " ".join(p["title"].split()),
                "abstract": shorten(p["abstract"]),
                "abstract_text": _wrapped_abstract(p["abstract"]),
                # The title opens the paper: its abstract page, else its page here.
                "url": p["url"]
                if _is_http(p["url"])
                else f"{settings.base_url}/papers/{p['paper_id']}",
                "pdf_url": p.get("pdf_url") if _is_http(p.get("pdf_url")) else None,
                "authors": _authors_line(p.get("authors")),
                "reason": p["reason"],
                "tldr": " ".join((p.get("ai_summary") or "").split()) or None,
                "section": p.get("section"),
                "like_url": rate_url(settings, token, p["paper_id"], 1),
                "dislike_url": rate_url(settings, token, p["paper_id"], -1),
            }
            for p in papers
        ],
    }
    text = render_email("email/digest.txt", context, templates=templates)
    html = render_email("email/digest.html", context, templates=templates)
    mailto = settings.unsubscribe_mailto
    targets = [f"<{unsubscribe}>"] + ([f"<mailto:{mailto}?subject=unsubscribe>"] if mailto else [])
    return build_message(
        settings,
        to=digest["recipient"],
        subject=context["subject"],
        text=text,
        html=html,
        date=datetime.fromisoformat(digest["created_at"]),
        message_id=digest["message_id"],
        headers=[
            ("List-Unsubscribe", ", ".join(targets)),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),  # RFC 8058
            ("Auto-Submitted", "auto-generated"),  # RFC 3834: no vacation replies
        ],
    )
