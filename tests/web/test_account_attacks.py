"""Attacks on accounts (issue 11, items 1-6), each through the real app on a real SQLite file.

Each test is the attack as it was tried: it failed before the fix and must keep passing.
"""

from __future__ import annotations

import html
import re

import pytest

from recommender import store

from .._web import (
    PASSWORD,
    csrf_token,
    deliver_mails,
    link_in,
    log_in,
    mails,
    post,
    sign_up,
    user_id,
)

COOKIE = "session"


def cookie_of(client) -> str:
    found = client.get_cookie(COOKIE)
    assert found is not None, "no session cookie"
    return found.value


def client_with(app, cookie: str):
    """A new browser that presents a copied session cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie)
    return thief


# -- 1. account takeover by id reuse ---------------------------------------------------------


def test_a_deleted_accounts_cookie_and_links_never_work_on_the_next_account(app, db, data_dir):
    eve = app.test_client()
    sign_up(eve, "eve@example.org")
    eve_id = user_id(db, "eve@example.org")
    confirm_link = link_in(mails(data_dir)[-1], "confirm")
    post(eve, "/reset", {"email": "eve@example.org"})
    deliver_mails(app)
    reset_link = link_in(mails(data_dir)[-1], "reset")
    kept_cookie = cookie_of(eve)
    assert post(eve, "/account/delete", {"password": PASSWORD}).status_code == 302

    carol = app.test_client()
    sign_up(carol, "carol@example.org", confirm=False)
    carol_before = store.get_user_by_email(db, "carol@example.org")
    assert carol_before["id"] != eve_id  # ids are never reused

    # Even if the id did recur (a restored backup), the cookie names a secret Carol lacks.
    db.execute("UPDATE users SET id = ? WHERE id = ?", [eve_id, carol_before["id"]])
    db.conn.commit()
    thief = client_with(app, kept_cookie)
    assert thief.get("/settings.json").status_code == 401
    assert thief.get("/reset/" + reset_link.split("/reset/")[1]).status_code == 400
    assert post(thief, reset_link, {"password": "eve owns this now"}).status_code == 400
    assert post(thief, confirm_link).status_code == 400
    carol_after = store.get_user_by_email(db, "carol@example.org")
    assert carol_after["password_hash"] == carol_before["password_hash"]
    assert carol_after["email_confirmed_at"] is None
    assert log_in(app.test_client(), "carol@example.org").status_code == 302


def test_user_ids_are_never_reused_after_the_newest_account_is_deleted(app, db):
    first = app.test_client()
    sign_up(first, "eve@example.org")
    eve_id = user_id(db, "eve@example.org")
    post(first, "/account/delete", {"password": PASSWORD})
    sign_up(app.test_client(), "carol@example.org")
    assert user_id(db, "carol@example.org") > eve_id


# -- 2. logout, password change, reset and deletion end the session server-side -----------


def test_the_account_secret_is_never_shown(ada, db):
    secret = store.get_user_by_email(db, "ada@example.org")["auth_secret"]
    assert len(secret) == 64
    for path in ("/settings.json", "/settings", "/feed.json"):
        assert secret not in ada.get(path).get_data(as_text=True), path
    assert secret not in ada.get_cookie(COOKIE).value  # a fingerprint, not the secret


def test_a_cookie_copied_before_logout_no_longer_works(ada, app):
    copied = cookie_of(ada)
    assert client_with(app, copied).get("/settings.json").status_code == 200
    post(ada, "/logout")
    assert client_with(app, copied).get("/settings.json").status_code == 401


def test_a_cookie_copied_before_a_password_change_no_longer_works(ada, app):
    copied = cookie_of(ada)
    post(ada, "/account/password", {"current_password": PASSWORD, "new_password": "new password!"})
    assert ada.get("/settings.json").status_code == 200  # this session goes on
    assert client_with(app, copied).get("/settings.json").status_code == 401


def test_a_cookie_copied_before_a_reset_no_longer_works(ada, app, data_dir):
    copied = cookie_of(ada)
    stranger = app.test_client()
    post(stranger, "/reset", {"email": "ada@example.org"})
    deliver_mails(app)
    post(stranger, link_in(mails(data_dir)[-1], "reset"), {"password": "a new password"})
    assert client_with(app, copied).get("/settings.json").status_code == 401


# -- 3. open redirects -------------------------------------------------------------------------

#: As a link would carry them: GET /login?next=... (the issue's attack).
HOSTILE_QUERIES = [
    "/%09/evil.example/",
    "//evil.example/",
    "%5C%5Cevil.example/",
    "/%5Cevil.example/",
    "/%0A/x",
    "/%0D%0ASet-Cookie:%20x=1",
    "https://evil.example/",
    "javascript:alert(1)",
    "/%00/x",
    "/%20/evil.example",
    "/%2F/evil.example",
]
#: As a form field arrives, decoded (the rating form's hidden ``next``), and as sent.
HOSTILE_VALUES = list(
    dict.fromkeys(
        [
            "/\t/evil.example/",
            "//evil.example/",
            "\\\\evil.example/",
            "/\\evil.example/",
            "/\n/x",
            "/\r\nSet-Cookie: x=1",
            "https://evil.example/",
            "/\x00/x",
            "/ /evil.example",
            *HOSTILE_QUERIES,
        ]
    )
)
_NEXT_FIELD = re.compile(r'name="next" value="([^"]*)"')


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_login_from_a_hostile_link_never_redirects_off_site(client, app, query):
    sign_up(app.test_client(), "ada@example.org")
    page = client.get("/login?next=" + query)
    assert page.status_code == 200
    field = _NEXT_FIELD.search(page.get_data(as_text=True))
    assert field, "the login form carries next"
    response = log_in_next(client, html.unescape(field.group(1)))
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", HOSTILE_VALUES)
def test_login_never_redirects_off_site(client, app, target):
    sign_up(app.test_client(), "ada@example.org")
    response = log_in_next(client, target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", HOSTILE_VALUES)
def test_the_rating_form_never_redirects_off_site(ada, target):
    paper = ada.get("/feed.json").get_json()["papers"][0]["paper_id"]
    response = post(ada, f"/papers/{paper}/rate", {"value": "like", "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_a_same_site_next_is_kept(client, app):
    sign_up(app.test_client(), "ada@example.org")
    response = log_in_next(client, "/search?q=graph%20neural")
    assert response.headers["Location"] == "/search?q=graph%20neural"


def log_in_next(client, target: str):
    token = csrf_token(client)
    return client.post(
        "/login",
        data={
            "csrf_token": token,
            "email": "ada@example.org",
            "password": PASSWORD,
            "next": target,
        },
    )


# -- 4. security headers -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/settings", "/feed.json", "/static/app.js"])
def test_every_response_has_the_security_headers(ada, path):
    response = ada.get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # development: plain http


def test_hsts_in_production(data_dir, monkeypatch):
    from web import create_app

    monkeypatch.setenv("PAPERFEED_ENV", "production")
    monkeypatch.setenv("PAPERFEED_SECRET_KEY", "k" * 64)
    app = create_app({"DATA_DIR": str(data_dir)})
    response = app.test_client().get("/login", base_url="https://paperfeed.example")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


INLINE = [
    r"<script(?![^>]*\bsrc=)[^>]*>",  # a script element without src
    r"<style\b",
    r"\sstyle=",
    r"\son[a-z]+=",  # onclick=, onfocus=, ...
    r"javascript:",
]


def test_no_page_has_inline_script_or_style_the_policy_would_block(ada):
    paper = ada.get("/feed.json").get_json()["papers"][0]["paper_id"]
    post(ada, "/settings/atom", {"action": "regenerate"})  # its field had an onfocus
    assert "Atom feed address" in ada.get("/settings").get_data(as_text=True)
    pages = ["/", "/welcome", "/search?q=model", f"/papers/{paper}", "/settings", "/login"]
    for path in pages:
        html = ada.get(path).get_data(as_text=True)
        for pattern in INLINE:
            assert not re.search(pattern, html, re.IGNORECASE), (path, pattern)


# -- 6. a stranger cannot lock someone out of their account ---------------------------------


def test_guessing_cannot_lock_out_the_owner_on_a_browser_they_logged_in_from(client, app, db):
    sign_up(client)  # Ada's own browser: it has logged in before
    post(client, "/logout")
    attacker = app.test_client()  # same address (127.0.0.1): a shared NAT
    for _ in range(25):
        log_in(attacker, "ada@example.org", "guess guess")
    assert log_in(attacker, "ada@example.org", "guess guess").status_code == 429
    assert log_in(attacker, "ada@example.org", PASSWORD).status_code == 429  # still locked
    # Ada, on her browser, with her password, from behind the same NAT: let in.
    assert log_in(client, "ada@example.org").status_code == 302
    assert client.get("/settings.json").status_code == 200


def test_a_browser_that_logged_in_before_is_limited_on_its_own(client, app, db):
    sign_up(client)
    post(client, "/logout")
    for _ in range(5):
        assert log_in(client, "ada@example.org", "guess guess").status_code == 401
    assert log_in(client, "ada@example.org").status_code == 429  # this browser failed: wait
    # Its failures do not lock a new browser out.
    assert log_in(app.test_client(), "ada@example.org").status_code == 302


def test_a_deleted_accounts_digest_links_never_act_on_the_next_account(
    app, db, data_dir, monkeypatch
):
    from datetime import UTC, datetime

    from recommender import digest
    from recommender.config import load_settings

    monkeypatch.setenv("PAPERFEED_SECRET_KEY", "test-secret")  # the app's key
    monkeypatch.delenv("PAPERFEED_SMTP_URL", raising=False)
    settings = load_settings(data_dir)

    def digest_links(address: str):
        browser = app.test_client()
        sign_up(browser, address)
        store.confirm_email(db, user_id(db, address), address)
        digest.send_due_digests(db, settings, now=datetime(2026, 11, 20, 7, 5, tzinfo=UTC))
        [message] = [m for m in mails(data_dir) if m["To"] == address and "digest" in m["Subject"]]
        text = message.get_body(("plain",)).get_content()
        return browser, re.findall(r"http://127\.0\.0\.1:5000(/(?:r|unsubscribe)/\S+)", text)

    eve, eve_links = digest_links("eve@example.org")
    assert any(link.startswith("/r/") for link in eve_links) and eve_links[-1].startswith("/unsub")
    post(eve, "/account/delete", {"password": PASSWORD})
    digest_links("carol@example.org")
    carol = user_id(db, "carol@example.org")
    for link in eve_links:
        stranger = app.test_client()
        assert stranger.get(link).status_code == 410, link
        assert post(stranger, link).status_code == 410, link
    assert db.execute("SELECT count(*) FROM ratings WHERE user_id = ?", [carol]).fetchone() == (0,)
    assert store.get_user(db, carol)["digest_enabled"] == 1


# -- HEAD is not a POST --------------------------------------------------------------------


def test_head_requests_to_the_account_forms_change_nothing(client, app, db):
    """A HEAD (a link checker, a scanner) on the login, sign-up and reset forms gets the
    form's headers: it is never taken as a login attempt (once a 401 that counted against
    the address), a sign-up or a reset request."""
    from ..conftest import snapshot

    sign_up(client, "ada@example.org")
    before = snapshot(db)
    stranger = app.test_client()
    form = {"email": "ada@example.org", "password": "wrong password"}
    for path in ("/login", "/signup", "/reset"):
        for _ in range(8):  # more than the login limit
            response = stranger.open(path, method="HEAD", data=form)
            assert response.status_code == 200, path
    assert snapshot(db) == before
    assert log_in(app.test_client(), "ada@example.org").status_code == 302
