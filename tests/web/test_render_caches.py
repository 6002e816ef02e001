"""The per-request work the app skips: cached paper cards and hourly session cookies.

Each cache is checked against what it replaces: a cached card is the card a
fresh render gives, follows every rating, and carries the token of whoever
asks; an unchanged session cookie is not re-sent, but is refreshed once an
hour and still expires.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

from itsdangerous import TimestampSigner

from .._web import post, rate_by_fetch, sign_up

_CARD = re.compile(r'<article class="paper.*?</article>', re.S)
_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_META_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


def cards(page: str) -> list[str]:
    return _CARD.findall(page)


def card_of(page: str, paper_id: int) -> str:
    found = [c for c in cards(page) if f'data-paper-id="{paper_id}"' in c]
    assert len(found) == 1, f"paper {paper_id} is not on the page once"
    return found[0]


def without_tokens(html: str) -> str:
    return _META_TOKEN.sub("META", _FORM_TOKEN.sub("TOKEN", html))


def first_paper(client) -> int:
    return client.get("/feed.json").get_json()["papers"][0]["paper_id"]


def page_with(client, paper_id: int) -> str:
    """The feed page (rated and seen papers included) that shows ``paper_id``."""
    page = 1
    while page:
        html = client.get(f"/?seen=1&page={page}").get_data(as_text=True)
        if f'data-paper-id="{paper_id}"' in html:
            return html
        page = page + 1 if 'rel="next"' in html else None
    raise AssertionError(f"paper {paper_id} is on no page")


def test_a_cached_card_is_the_card_a_fresh_render_gives(app, ada):
    cache = app.jinja_env.globals["paper_cards"]
    first = ada.get("/").get_data(as_text=True)
    assert len(cards(first)) == 20 and len(cache) >= 20
    warm = ada.get("/").get_data(as_text=True)
    cache._cards.clear()
    cold = ada.get("/").get_data(as_text=True)
    assert [without_tokens(c) for c in cards(warm)] == [without_tokens(c) for c in cards(cold)]
    assert without_tokens(warm) == without_tokens(cold)
    assert cache.slot not in warm and cache.slot not in cold


def test_a_cached_card_follows_every_rating(ada):
    paper = first_paper(ada)
    assert 'aria-pressed="true"' not in card_of(page_with(ada, paper), paper)  # now cached
    for value, pressed in (("like", "btn-like"), ("dislike", "btn-dislike")):
        rate_by_fetch(ada, paper, value)
        card = card_of(page_with(ada, paper), paper)
        assert re.search(rf'class="btn {pressed}" aria-pressed="true"', card), card
        assert "btn-undo" in card and 'class="btn btn-undo" hidden' not in card
    rate_by_fetch(ada, paper, "undo")
    card = card_of(page_with(ada, paper), paper)
    assert 'aria-pressed="true"' not in card and 'class="btn btn-undo" hidden' in card


def test_cards_shared_between_people_carry_each_persons_own_token(app):
    ada, bob = app.test_client(), app.test_client()
    sign_up(ada, "ada@example.org")
    sign_up(bob, "bob@example.org")
    ada_page = ada.get("/").get_data(as_text=True)
    bob_page = bob.get("/").get_data(as_text=True)  # the same cards, from the cache
    ada_tokens = set(_FORM_TOKEN.findall(ada_page))
    bob_tokens = set(_FORM_TOKEN.findall(bob_page))
    assert ada_tokens.isdisjoint(bob_tokens)
    # A card's form posts with the token it carries, for the person who got it.
    paper = int(re.search(r'data-paper-id="(\d+)"', bob_page).group(1))
    token = _FORM_TOKEN.search(card_of(bob_page, paper)).group(1)
    response = bob.post(f"/papers/{paper}/rate", data={"value": "like", "csrf_token": token})
    assert response.status_code == 302
    # Ada's token does not work in Bob's session.
    ada_token = _FORM_TOKEN.search(card_of(ada_page, paper)).group(1)
    refused = bob.post(f"/papers/{paper}/rate", data={"value": "undo", "csrf_token": ada_token})
    assert refused.status_code == 400


def test_an_unchanged_session_cookie_is_not_resent_but_a_change_is(ada):
    ada.get("/")  # shows (and so removes) the flash message of signing up
    assert "Set-Cookie" not in ada.get("/").headers
    assert "Set-Cookie" not in ada.get("/feed.json").headers
    response = post(ada, f"/papers/{first_paper(ada)}/rate", {"value": "like"})
    assert "Set-Cookie" in response.headers  # the flash message changed the session


def _sign_cookie_at(app, client, issued: float) -> None:
    """Re-sign the client's session cookie as if it had been issued at ``issued``."""
    interface = app.session_interface
    serializer = interface.get_signing_serializer(app)
    data = serializer.loads(client.get_cookie("session").value)
    original = TimestampSigner.get_timestamp
    TimestampSigner.get_timestamp = lambda self: int(issued)
    try:
        value = serializer.dumps(data)
    finally:
        TimestampSigner.get_timestamp = original
    client.set_cookie("session", value)


def test_a_session_is_refreshed_after_an_hour_and_expires_when_unused(app, ada):
    ada.get("/")
    _sign_cookie_at(app, ada, time.time() - 2 * 3600)
    response = ada.get("/")
    assert response.status_code == 200 and "Set-Cookie" in response.headers
    assert "Set-Cookie" not in ada.get("/").headers  # the refreshed cookie is new again
    lifetime = app.permanent_session_lifetime
    assert lifetime > timedelta(hours=1)
    _sign_cookie_at(app, ada, time.time() - lifetime.total_seconds() - 60)
    expired = ada.get("/")
    assert expired.status_code == 302 and "/login" in expired.headers["Location"]


def test_a_new_secret_key_ends_sessions_unless_the_old_one_is_a_fallback(app, ada):
    assert ada.get("/").status_code == 200  # the serializer of the first key is made
    app.config["SECRET_KEY"], app.config["SECRET_KEY_FALLBACKS"] = "rotated", ["test-secret"]
    assert ada.get("/").status_code == 200  # the old key still verifies
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert ada.get("/").status_code == 302  # signed with a key no longer known: logged out


def test_cards_are_not_kept_while_templates_reload(data_dir):
    from web import create_app

    app = create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "s", "DEBUG": True})
    app.jinja_env.auto_reload = True  # what `paperfeed serve --debug` runs with
    client = app.test_client()
    sign_up(client, "ada@example.org")
    assert len(cards(client.get("/").get_data(as_text=True))) == 20
    assert len(app.jinja_env.globals["paper_cards"]) == 0
