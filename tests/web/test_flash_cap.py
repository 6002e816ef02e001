"""Flash messages cannot grow the session cookie without bound (issue 20, item 9): a
client that posts rating forms and never follows the redirects used to pile one message
per POST into its cookie until every request got 431."""

from __future__ import annotations

from .._web import csrf_token

#: Browsers keep cookies up to 4096 bytes; servers refuse headers not much larger.
COOKIE_LIMIT = 4096


def session_cookie(client) -> str:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else ""


def test_rating_forms_never_followed_keep_the_session_cookie_small(ada):
    papers = [p["paper_id"] for p in ada.get("/feed.json").get_json()["papers"][:10]]
    token = csrf_token(ada)
    sizes = []
    for i in range(120):
        paper = papers[i % len(papers)]
        value = "like" if i % 2 else "dislike"
        response = ada.post(f"/papers/{paper}/rate", data={"value": value, "csrf_token": token})
        assert response.status_code == 302
        sizes.append(len(session_cookie(ada)))
    assert max(sizes) < COOKIE_LIMIT // 2, sizes[-1]
    assert sizes[-1] <= sizes[20] + 64  # it stopped growing
    page = ada.get("/").get_data(as_text=True)  # the newest messages are the ones shown
    assert page.count('class="flash flash-') <= 5 and "Liked" in page


def test_a_long_message_is_cut_not_kept_whole():
    from flask.sessions import SecureCookieSession

    from web.sessions import MAX_FLASH_CHARS, cap_flashes

    session = SecureCookieSession({"_flashes": [("error", "x" * 10_000), ("success", "ok")]})
    cap_flashes(session)
    assert sum(len(m) for _, m in session["_flashes"]) <= MAX_FLASH_CHARS + 2
    assert session["_flashes"][-1] == ("success", "ok")
