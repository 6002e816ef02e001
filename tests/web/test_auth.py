"""Accounts: sign up, log in and out, rate limit, confirm, reset, delete; CSRF; login required."""

from __future__ import annotations

import time

import pytest
from itsdangerous.timed import TimestampSigner

from recommender import pipeline, store
from web import auth

from .._web import (
    PASSWORD,
    csrf_token,
    deliver_mails,
    link_in,
    log_in,
    mails,
    post,
    rate_by_fetch,
    sign_up,
    user_id,
)


def test_sign_up_stores_a_scrypt_hash_and_its_mailed_link_confirms_and_logs_in(
    client, app, db, data_dir
):
    response = post(client, "/signup", {"email": "ada@example.org", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    user = store.get_user_by_email(db, "ADA@example.org")
    assert user["password_hash"].startswith("scrypt:") and PASSWORD not in user["password_hash"]
    assert user["email_confirmed_at"] is None
    assert client.get("/").status_code == 302  # not logged in until the link is opened
    assert "Check your inbox" in client.get("/login").get_data(as_text=True)
    assert mails(data_dir) == []  # queued: the request sent nothing
    deliver_mails(app)
    [message] = mails(data_dir)
    assert message["To"] == "ada@example.org" and "/confirm/" in message.get_content()
    confirmed = post(client, link_in(message, "confirm"))
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/welcome"
    assert store.get_user_by_email(db, "ada@example.org")["email_confirmed_at"] is not None
    assert client.get("/").status_code == 200  # logged in


def test_sign_up_answers_the_same_for_an_address_that_has_an_account(app, db, data_dir):
    sign_up(app.test_client(), "ada@example.org")
    before = store.get_user_by_email(db, "ada@example.org")
    answers = []
    for address in ("Ada@Example.org", "new@example.org"):
        visitor = app.test_client()
        response = post(visitor, "/signup", {"email": address, "password": "another password"})
        page = visitor.get("/login").get_data(as_text=True)
        flash = page[page.index("Check your inbox") :].split("<")[0].replace(address, "X")
        answers.append((response.status_code, response.headers["Location"], flash))
        assert visitor.get("/").status_code == 302  # nobody is logged in
    assert answers[0] == answers[1]
    assert store.get_user_by_email(db, "ada@example.org") == before  # unchanged
    assert len(store.list_users(db)) == 2
    deliver_mails(app)
    tried = mails(data_dir)[-2]
    assert tried["To"] == "ada@example.org"
    assert tried["Subject"] == "Someone tried to sign up with your address"
    stranger = app.test_client()  # its link resets the password
    assert (
        post(stranger, link_in(tried, "reset"), {"password": "a new password"}).status_code == 302
    )
    assert log_in(app.test_client(), "ada@example.org", "a new password").status_code == 302


def test_signing_up_again_before_confirming_mails_a_new_confirmation_link(
    client, app, db, data_dir
):
    """Found by a user trial: a person whose confirmation mail never arrived signed up
    again and got "someone tried to sign up" with a reset link only. An address never
    confirmed gets a new confirmation link; the answer on the page is the same."""
    sign_up(client, confirm=False)
    deliver_mails(app)
    again = app.test_client()
    response = post(again, "/signup", {"email": "ada@example.org", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    deliver_mails(app)
    latest = mails(data_dir)[-1]
    assert latest["To"] == "ada@example.org" and latest["Subject"].startswith("Confirm")
    confirmed = post(again, link_in(latest, "confirm"))
    assert confirmed.status_code == 302 and confirmed.headers["Location"] == "/welcome"
    assert store.get_user_by_email(db, "ada@example.org")["email_confirmed_at"] is not None


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("America/New_York", "America/New_York"),
        ("Mars/Olympus", "UTC"),
        ("../../etc/passwd", "UTC"),
        ("", "UTC"),  # no JavaScript: the account starts on UTC
    ],
)
def test_sign_up_keeps_the_time_zone_the_browser_sent_if_it_is_one(client, db, sent, stored):
    response = post(
        client, "/signup", {"email": "ada@example.org", "password": PASSWORD, "timezone": sent}
    )
    assert response.status_code == 302
    assert store.get_user_by_email(db, "ada@example.org")["timezone"] == stored
    sign_up(client, "ada@example.org")  # the link logs in; the second sign-up changes nothing
    assert client.get("/settings.json").get_json()["timezone"] == stored


@pytest.mark.parametrize(
    ("address", "password", "problem"),
    [
        ("not-an-address", PASSWORD, "Enter an email address"),
        ("ada@example.org", "short", "at least 8 characters"),
    ],
)
def test_sign_up_names_the_field_that_is_wrong(client, db, address, password, problem):
    response = post(client, "/signup", {"email": address, "password": password})
    assert response.status_code == 400
    assert problem in response.get_data(as_text=True)
    assert store.list_users(db) == []


def test_an_address_signs_up_only_once_whatever_its_case(client, app, db):
    sign_up(client, "ada@example.org")
    other = app.test_client()
    response = post(other, "/signup", {"email": "Ada@Example.org", "password": PASSWORD})
    assert response.status_code == 302 and "exists" not in response.get_data(as_text=True)
    assert [u["email"] for u in store.list_users(db)] == ["ada@example.org"]


def test_log_in_and_out(client, app):
    sign_up(client)
    post(client, "/logout")
    assert client.get("/").status_code == 302
    response = log_in(client, "ada@example.org")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(client, app):
    sign_up(client)
    other = app.test_client()
    wrong = log_in(other, "ada@example.org", "wrong password")
    nobody = log_in(other, "nobody@example.org", PASSWORD)
    assert wrong.status_code == nobody.status_code == 401
    assert "do not match" in wrong.get_data(as_text=True)
    assert "do not match" in nobody.get_data(as_text=True)


def test_login_goes_back_to_the_page_asked_for_but_never_to_another_site(client, app):
    sign_up(client)
    post(client, "/logout")
    assert client.get("/settings").headers["Location"] == "/login?next=/settings"
    back = post(
        client, "/login", {"email": "ada@example.org", "password": PASSWORD, "next": "/settings"}
    )
    assert back.headers["Location"] == "/settings"
    post(client, "/logout")
    away = post(
        client,
        "/login",
        {"email": "ada@example.org", "password": PASSWORD, "next": "//evil.example/x"},
    )
    assert away.headers["Location"] == "/"


def test_logins_are_rate_limited_per_address(client, app, db):
    sign_up(client)
    attacker = app.test_client()
    for _ in range(5):
        assert log_in(attacker, "ada@example.org", "guess guess").status_code == 401
    blocked = log_in(attacker, "ada@example.org", PASSWORD)  # even the right password
    assert blocked.status_code == 429
    assert "Too many failed logins" in blocked.get_data(as_text=True)
    assert db.execute("SELECT count(*) FROM login_attempts").fetchone()[0] == 5
    # An hour later the window has passed.
    db.execute("UPDATE login_attempts SET attempted_at = attempted_at - 3600")
    db.conn.commit()
    assert log_in(attacker, "ada@example.org", PASSWORD).status_code == 302
    assert db.execute("SELECT count(*) FROM login_attempts").fetchone()[0] == 0


def test_logout_is_a_post(client):
    sign_up(client)
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


def test_confirming_the_address_needs_the_button_not_just_the_link(client, app, db, data_dir):
    sign_up(client, confirm=False)
    deliver_mails(app)
    link = link_in(mails(data_dir)[0], "confirm")
    page = client.get(link)
    assert page.status_code == 200 and "Confirm ada@example.org" in page.get_data(as_text=True)
    assert store.get_user_by_email(db, "ada@example.org")["email_confirmed_at"] is None
    assert post(client, link).status_code == 302
    assert store.get_user_by_email(db, "ada@example.org")["email_confirmed_at"] is not None


def test_an_altered_confirmation_link_is_refused(client, db, data_dir):
    sign_up(client)
    link = link_in(mails(data_dir)[0], "confirm")
    response = client.get(link[:-3] + "xyz")
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)


def test_a_confirmation_link_opened_again_never_logs_in(client, app, db, data_dir):
    """The attack: someone holding an old confirmation mail opens its link after the owner
    confirmed and logged out everywhere. It must not start a session."""
    sign_up(client)  # the first use of the link confirms and logs in
    link = link_in(mails(data_dir)[0], "confirm")
    assert client.get("/").status_code == 200
    post(client, "/logout")
    assert client.get("/").status_code == 302
    holder = app.test_client()
    again = post(holder, link)
    assert again.status_code in (302, 400)
    assert holder.get("/").status_code == 302  # not logged in
    assert again.status_code == 400 or again.headers["Location"] == "/login"


def test_a_reset_voids_an_unused_confirmation_link(client, app, db, data_dir):
    """A link mailed before a password reset (which logs out everywhere) no longer
    confirms or logs in: the account's secret it was bound to has changed."""
    sign_up(client, confirm=False)
    deliver_mails(app)
    link = link_in(mails(data_dir)[-1], "confirm")
    post(app.test_client(), "/reset", {"email": "ada@example.org"})
    deliver_mails(app)
    reset = link_in(mails(data_dir)[-1], "reset")
    assert post(app.test_client(), reset, {"password": "a new password"}).status_code == 302
    holder = app.test_client()
    refused = post(holder, link)
    assert refused.status_code == 400 and "used already" in refused.get_data(as_text=True)
    assert holder.get("/").status_code == 302


def test_a_confirmation_link_of_the_old_form_is_refused(client, app, db, data_dir):
    """Links mailed before confirmation links were bound to the account's secret (id and
    address only) name nothing that a logout or a reset changes: refused."""
    from recommender.tokens import make_token

    sign_up(client, confirm=False)
    user = store.get_user_by_email(db, "ada@example.org")
    old = make_token(app.config["SECRET_KEY"], "confirm-email", [user["id"], user["email"]])
    refused = post(app.test_client(), f"/confirm/{old}")
    assert refused.status_code == 400
    assert store.get_user_by_email(db, "ada@example.org")["email_confirmed_at"] is None


def test_password_reset_link_works_once_and_ends_other_sessions(client, app, db, data_dir):
    sign_up(client)
    stranger = app.test_client()
    page = post(stranger, "/reset", {"email": "ada@example.org"})
    assert "If an account exists" in page.get_data(as_text=True)
    deliver_mails(app)
    link = link_in(mails(data_dir)[-1], "reset")
    assert stranger.get(link).status_code == 200
    assert post(stranger, link, {"password": "short"}).status_code == 400
    assert post(stranger, link, {"password": "a new password"}).status_code == 302
    assert stranger.get("/").status_code == 200  # logged in with the new password
    assert client.get("/").status_code == 302  # the old session ended
    assert log_in(app.test_client(), "ada@example.org", "a new password").status_code == 302
    spent = stranger.get(link)
    assert spent.status_code == 400 and "used already" in spent.get_data(as_text=True)


def test_reset_for_an_unknown_address_says_the_same_and_sends_nothing(client, app, data_dir):
    page = post(client, "/reset", {"email": "nobody@example.org"})
    assert page.status_code == 200 and "If an account exists" in page.get_data(as_text=True)
    deliver_mails(app)
    assert mails(data_dir) == []


def test_an_expired_reset_link_says_so(client, app, db, data_dir, monkeypatch):
    sign_up(client)
    three_hours_ago = int(time.time()) - 3 * 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: three_hours_ago)
    post(client, "/reset", {"email": "ada@example.org"})
    deliver_mails(app)  # the link is made when the mail is sent
    monkeypatch.undo()
    response = client.get(link_in(mails(data_dir)[-1], "reset"))
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)


def test_deleting_the_account_deletes_all_its_data(client, db):
    sign_up(client)
    uid = user_id(db, "ada@example.org")
    paper = client.get("/feed.json").get_json()["papers"][0]["paper_id"]
    assert rate_by_fetch(client, paper, "like").status_code == 200
    wrong = post(client, "/account/delete", {"password": "not it"})
    assert wrong.status_code == 302 and store.get_user(db, uid) is not None
    assert post(client, "/account/delete", {"password": PASSWORD}).status_code == 302
    assert store.get_user(db, uid) is None
    for table in ("ratings", "impressions"):
        assert db.execute(f"SELECT count(*) FROM {table} WHERE user_id = ?", [uid]).fetchone() == (
            0,
        )
    assert client.get("/").status_code == 302


def test_forms_and_fetch_posts_without_a_csrf_token_are_refused(client, db):
    sign_up(client)
    paper = client.get("/feed.json").get_json()["papers"][0]["paper_id"]
    form = client.post(f"/papers/{paper}/rate", data={"value": "like"})
    fetch = client.post(
        f"/papers/{paper}/rate",
        data={"value": "like"},
        headers={"X-CSRFToken": "forged", "Accept": "application/json"},
    )
    assert form.status_code == 400 and "expired" in form.get_data(as_text=True)
    assert fetch.status_code == 400 and "error" in fetch.get_json()
    assert (
        client.post("/signup", data={"email": "b@example.org", "password": PASSWORD}).status_code
        == 400
    )
    assert pipeline.user_ratings(db, user_id(db, "ada@example.org")) == []
    token = csrf_token(client)
    assert (
        client.post(
            f"/papers/{paper}/rate", data={"value": "like", "csrf_token": token}
        ).status_code
        == 302
    )


PAGES = ["/", "/welcome", "/search?q=x", "/papers/1", "/settings", "/settings/export"]
JSON = ["/feed.json", "/welcome.json", "/search.json?q=x", "/papers/1.json", "/settings.json"]
POSTS = [
    "/papers/1/rate",
    "/welcome/keywords",
    "/settings/digest",
    "/settings/muted",
    "/settings/reset",
    "/settings/import",
    "/settings/atom",
    "/account/delete",
    "/confirm/resend",
]


def test_every_page_needs_a_login(client):
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path
    for path in JSON:
        response = client.get(path)
        assert response.status_code == 401 and response.get_json()["status"] == 401, path
    token = csrf_token(client)
    for path in POSTS:
        assert client.post(path, data={"csrf_token": token}).status_code == 401, path


def test_session_cookie_is_httponly_and_samesite(client):
    response = post(client, "/signup", {"email": "ada@example.org", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def change_password(client, current: str, new: str) -> str:
    """Post the change-password form; the page it ends on, as text."""
    response = post(
        client,
        "/account/password",
        {"current_password": current, "new_password": new},
        follow_redirects=True,
    )
    return response.get_data(as_text=True)


def test_changing_the_password_needs_the_current_one_and_ends_other_sessions(client, app, db):
    sign_up(client)
    other = app.test_client()
    log_in(other, "ada@example.org")
    assert other.get("/").status_code == 200
    # Wrong current password: refused, nothing changes.
    page = change_password(client, "wrong password", "a new long password")
    assert "current password is not right" in page
    assert other.get("/").status_code == 200
    # Too short: refused with the reason.
    assert "at least 8 characters" in change_password(client, PASSWORD, "short")
    assert "Your password is changed" in change_password(client, PASSWORD, "a new long password")
    assert client.get("/").status_code == 200  # this session stays
    assert other.get("/").status_code == 302  # the other one is logged out
    assert log_in(app.test_client(), "ada@example.org").status_code == 401
    assert log_in(app.test_client(), "ada@example.org", "a new long password").status_code == 302


def test_reset_requests_are_rate_limited_whether_or_not_the_account_exists(client, app, data_dir):
    for address in ("nobody@example.org", "ada@example.org"):
        if address == "ada@example.org":
            sign_up(client)
            post(client, "/logout")
        before = len(mails(data_dir))
        for _ in range(auth.MAX_RESETS_PER_EMAIL):
            assert post(client, "/reset", {"email": address}).status_code == 200
        limited = post(client, "/reset", {"email": address})
        assert limited.status_code == 429
        assert "Too many reset requests" in limited.get_data(as_text=True)
        deliver_mails(app)
        sent = len(mails(data_dir)) - before
        assert sent == (auth.MAX_RESETS_PER_EMAIL if address == "ada@example.org" else 0)
    bad = post(client, "/reset", {"email": "not an address"})
    assert bad.status_code == 400 and "Enter an email address" in bad.get_data(as_text=True)


@pytest.mark.parametrize("hops, recorded", [(None, "127.0.0.1"), ("1", "203.0.113.9")])
def test_forwarded_client_addresses_count_only_behind_a_configured_proxy(
    data_dir, db, monkeypatch, hops, recorded
):
    from web import create_app

    if hops is None:
        monkeypatch.delenv("PAPERFEED_PROXY_HOPS", raising=False)
    else:
        monkeypatch.setenv("PAPERFEED_PROXY_HOPS", hops)
    app = create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "test", "TESTING": True})
    client = app.test_client()
    token = csrf_token(client)
    client.post(
        "/login",
        data={"csrf_token": token, "email": "eve@example.org", "password": "guess guess"},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    rows = db.execute("SELECT remote_addr FROM login_attempts").fetchall()
    assert rows == [(recorded,)]


def test_a_bad_proxy_hops_setting_stops_the_app(data_dir, monkeypatch):
    from web import ConfigError, create_app

    monkeypatch.setenv("PAPERFEED_PROXY_HOPS", "all")
    with pytest.raises(ConfigError, match="PAPERFEED_PROXY_HOPS"):
        create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "test"})
