"""Links in emails: rate a paper, unsubscribe from digests. No login: the signed token is the key.

Mail scanners and link previews fetch every link in a message, so a GET only
shows a confirmation page and records nothing; the rating or unsubscription
happens on the POST. Rating forms carry a CSRF token. The unsubscribe POST is
exempt from CSRF because RFC 8058 one-click clients POST to the
``List-Unsubscribe`` URL without a form; the signed, expiring token
authenticates it instead.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template

from recommender import pipeline, store
from recommender.tokens import TokenError, read_token

from .db import get_db
from .extensions import csrf

bp = Blueprint("email_links", __name__)


class LinkError(Exception):
    """A link that cannot be used: 400 (altered), 410 (expired, or its target is gone)."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


@bp.errorhandler(LinkError)
def link_error(exc: LinkError):
    return render_template("email_links/error.html", message=str(exc)), exc.status


def _payload(purpose: str, token: str) -> list:
    try:
        return read_token(current_app.config["SECRET_KEY"], purpose, token)
    except TokenError as exc:
        raise LinkError(410 if exc.reason == "expired" else 400, str(exc)) from None


CHOICES = {"like": 1, "dislike": -1}


def _rating(token: str, paper_id: int, choice: str) -> tuple[int, dict, int]:
    """``(user_id, paper, value)`` for a digest's rating link, or :class:`LinkError`.

    The token names a person and one of their digests; the paper must be in that digest.
    """
    user_id, digest_id = _payload("rate", token)
    db = get_db()
    if store.get_subscriber(db, user_id) is None:
        raise LinkError(410, "The account this link was made for no longer exists.")
    if not store.digest_has_paper(db, digest_id, user_id, paper_id):
        raise LinkError(400, "This link is not valid: it does not match a paper of your digest.")
    paper = store.get_paper(db, paper_id)
    if paper is None:
        raise LinkError(410, "This paper is no longer in paperfeed.")
    return user_id, paper, CHOICES[choice]


@bp.get("/r/<token>/<int:paper_id>/<any(like, dislike):choice>")
def rate_confirm(token: str, paper_id: int, choice: str):
    _, paper, value = _rating(token, paper_id, choice)
    return render_template(
        "email_links/rate.html", paper=paper, value=value, token=token, choice=choice
    )


@bp.post("/r/<token>/<int:paper_id>/<any(like, dislike):choice>")
def rate(token: str, paper_id: int, choice: str):
    user_id, paper, value = _rating(token, paper_id, choice)
    pipeline.record_feedback(get_db(), user_id, paper["id"], value, source="email")
    return render_template("email_links/rated.html", paper=paper, value=value)


def _subscriber(token: str) -> tuple[int, str]:
    user_id, email = _payload("unsubscribe", token)
    person = store.get_subscriber(get_db(), user_id)
    if person is None:
        raise LinkError(410, "The account this link was made for no longer exists.")
    if person["email"].lower() != email.lower():
        raise LinkError(
            410,
            "This link was made for an earlier email address of this account. "
            "Turn digests off in your settings instead.",
        )
    return user_id, person["email"]


@bp.get("/unsubscribe/<token>")
def unsubscribe_confirm(token: str):
    _, email = _subscriber(token)
    return render_template("email_links/unsubscribe.html", email=email, token=token)


@bp.post("/unsubscribe/<token>")
@csrf.exempt  # RFC 8058 one-click: the signed token authenticates this POST
def unsubscribe(token: str):
    user_id, email = _subscriber(token)
    store.unsubscribe_user(get_db(), user_id, email)
    return render_template("email_links/unsubscribed.html", email=email)
