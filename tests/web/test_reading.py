"""The reading experience over HTTP: favicon, scores on cards, re-ranking answers,
messages in the right number, the email's like page, and pages that a strict
Content-Security-Policy (no inline script or style) does not break."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

import pytest

from recommender import digest, pipeline, store
from recommender.config import load_settings
from recommender.ingest import ingest_paths
from web.cards import match_label
from web.settings import import_message

from .._web import mails, post, rate_by_fetch, sign_up, user_id


def feed(client, query: str = "") -> list[dict]:
    return client.get(f"/feed.json{query}").get_json()["papers"]


# -- chrome -----------------------------------------------------------------------------------


def test_the_favicon_is_served_and_linked(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.mimetype in ("image/vnd.microsoft.icon", "image/x-icon")
    assert icon.data[:4] == b"\x00\x00\x01\x00" and len(icon.data) < 4096  # a real, tiny ICO
    page = client.get("/login").get_data(as_text=True)
    svg = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page).group(1)
    served = client.get(svg)
    assert served.status_code == 200 and served.mimetype == "image/svg+xml"
    assert b"<svg" in served.data


def test_the_logged_out_sign_up_button_is_a_primary_button(client):
    page = client.get("/login").get_data(as_text=True)
    assert re.search(r'<a class="btn btn-primary[^"]*" href="/signup">Sign up</a>', page)


def test_the_footer_says_how_to_turn_the_atom_feed_on(ada):
    assert "turn it on in Settings" in ada.get("/").get_data(as_text=True)
    post(ada, "/settings/atom", {"action": "regenerate"})
    page = ada.get("/").get_data(as_text=True)
    assert "turn it on" not in page and "Your Atom feed</a>" in page


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an on* handler attribute"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"<style", re.I), "a <style> element"),
]


def assert_csp_safe(html: str, where: str) -> None:
    for pattern, what in INLINE:
        found = pattern.search(html)
        assert found is None, f"{where} has {what}: {found.group(0)!r}"


def test_no_page_needs_inline_script_or_style(ada, client, db):
    paper = feed(ada)[0]["paper_id"]
    post(ada, "/settings/atom", {"action": "regenerate"})
    for path in ("/", "/?page=2", "/settings", f"/papers/{paper}", "/search?q=speech", "/welcome"):
        response = ada.get(path)
        assert response.status_code == 200, path
        assert_csp_safe(response.get_data(as_text=True), path)
    anonymous = client.application.test_client()
    for path in ("/login", "/signup", "/reset"):
        assert_csp_safe(anonymous.get(path).get_data(as_text=True), path)


# -- scores on cards ----------------------------------------------------------------------------


def test_ranked_cards_compare_each_paper_with_the_persons_own_likes(ada):
    post(ada, "/welcome/keywords", {"keywords": "speech recognition"})
    assert 'class="match' not in ada.get("/").get_data(as_text=True)  # no likes to compare
    for item in feed(ada)[:3]:
        rate_on_page(ada, item["paper_id"], "like", [item["paper_id"]])
    items = feed(ada)
    page = ada.get("/").get_data(as_text=True)
    labels = re.findall(
        r'<span class="match match-(\w+)" title="Scores as high as (\d+)% of the papers you '
        r'liked">(\w+)<span class="match-word"> match</span></span>',
        page,
    )
    assert len(labels) == len(items) == 20
    for (level, percent, word), item in zip(labels, items, strict=True):
        assert 0 <= item["match"] <= 1
        assert level == word == match_label(item["match"])["level"]
        assert int(percent) == round(100 * round(item["match"], 2))
    # "strong" means as high as half of what the person liked: not every card
    assert sum(level == "strong" for level, _, _ in labels) < len(labels)
    settings = ada.get("/settings").get_data(as_text=True)
    assert "0 is average for you, 0.5 a good match, 1 or more a strong one" in settings


def test_unranked_cards_show_no_score(ada):
    assert {p["reason"] for p in feed(ada)} == {"new in this dump"}  # no likes, no topics
    assert 'class="match' not in ada.get("/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("match", "level"),
    [(1.0, "strong"), (0.5, "strong"), (0.3, "good"), (0.05, "fair"), (0.0, "weak"), (None, None)],
)
def test_match_labels_say_where_a_paper_falls_among_the_persons_likes(match, level):
    label = match_label(match)
    assert (label and label["level"]) == level
    if label:
        assert label["text"] == f"{level} match"
        assert label["title"] == f"Scores as high as {match:.0%} of the papers you liked"


def test_similar_papers_say_what_their_number_means(ada):
    paper = feed(ada)[0]["paper_id"]
    page = ada.get(f"/papers/{paper}").get_data(as_text=True)
    assert "from 0 (no words in common) to 1 (the same text)" in page
    assert re.search(
        r'<meter min="0" max="1" value="0\.\d\d"[^>]*></meter> similarity 0\.\d\d', page
    )


# -- re-ranking after a like --------------------------------------------------------------------


def rate_on_page(client, paper_id: int, value: str, visible: list[int], next_url: str = "/"):
    response = rate_by_fetch_with(client, paper_id, value, visible, next_url)
    assert response.status_code == 200
    return response.get_json()


def rate_by_fetch_with(client, paper_id, value, visible, next_url):
    from .._web import csrf_token

    return client.post(
        f"/papers/{paper_id}/rate",
        data={"value": value, "next": next_url, "visible": ",".join(map(str, visible))},
        headers={"X-CSRFToken": csrf_token(client), "Accept": "application/json"},
    )


def test_a_like_answers_the_new_order_of_the_cards_on_the_page(ada):
    post(ada, "/welcome/keywords", {"keywords": "speech recognition"})
    shown = [p["paper_id"] for p in feed(ada)]
    liked = shown[4]
    body = rate_on_page(ada, liked, "like", shown)
    assert body["rating"] == 1
    # The unrated cards of the page, in the order a reload of the feed shows them.
    assert sorted(body["order"]) == sorted(p for p in shown if p != liked)
    reloaded = [p["paper_id"] for p in feed(ada)]
    assert [p for p in body["order"] if p in reloaded] == [
        p for p in reloaded if p in body["order"]
    ]
    assert body["order"] != [p for p in shown if p != liked]  # the like moved something
    now = {p["paper_id"]: p for p in feed(ada)}
    for pid in body["order"]:
        if pid in now:
            card = body["cards"][str(pid)]
            assert card["match"] == match_label(now[pid]["match"])
            assert card["reason"] == now[pid]["reason"]
    # Undo: the liked paper is back in the order, and the order is the first one again.
    again = rate_on_page(ada, liked, "undo", shown)
    assert again["order"] == shown


def test_the_order_follows_the_page_the_rating_came_from(ada, db):
    post(ada, "/welcome/keywords", {"keywords": "speech recognition"})
    page2 = [p["paper_id"] for p in feed(ada, "?page=2")]
    body = rate_on_page(ada, page2[0], "dislike", page2, next_url="/?page=2")
    assert sorted(body["order"]) == sorted(page2[1:])
    # An earlier dump's page is ranked within that dump.
    old = store.list_dumps(db)[-1]["id"]
    older = [p["paper_id"] for p in feed(ada, f"?dump={old}")]
    body = rate_on_page(ada, older[0], "like", older, next_url=f"/?dump={old}")
    assert sorted(body["order"]) == sorted(older[1:])


def test_search_pages_and_forms_without_ids_get_no_order(ada):
    shown = [p["paper_id"] for p in feed(ada)]
    body = rate_on_page(ada, shown[0], "like", shown, next_url="/search?q=speech")
    assert body == {"paper_id": shown[0], "rating": 1}
    assert rate_by_fetch(ada, shown[1], "like").get_json() == {"paper_id": shown[1], "rating": 1}
    odd = rate_on_page(ada, shown[2], "like", [], next_url="/")
    assert "order" not in odd
    junk = rate_by_fetch_with(ada, shown[3], "like", ["x", "1e9", "-3"], "/").get_json()
    assert "order" not in junk


# -- messages -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (
            {"imported": 1, "unchanged": 0, "unmatched": []},
            "Imported 1 rating (0 unchanged).",
        ),
        (
            {"imported": 2, "unchanged": 1, "unmatched": ["Lost"]},
            "Imported 2 ratings (1 unchanged). "
            "1 paper is not in paperfeed and was skipped: “Lost”.",
        ),
        (
            {"imported": 0, "unchanged": 0, "unmatched": ["A", "B"]},
            "Imported 0 ratings (0 unchanged). 2 papers are not in paperfeed and were skipped, "
            "e.g. “A”.",
        ),
    ],
)
def test_import_messages_count_in_the_right_number(result, message):
    assert import_message(result) == message


def test_importing_one_rating_and_one_unknown_paper_says_so(ada):
    title = feed(ada)[0]["title"]
    text = f'title,rating\n"{title}",like\nA paper nobody has heard of,like\n'
    upload = {"file": (io.BytesIO(text.encode()), "mine.csv")}
    post(ada, "/settings/import", upload, content_type="multipart/form-data")
    page = ada.get("/settings").get_data(as_text=True)
    assert "Imported 1 rating (0 unchanged)." in page
    assert "1 paper is not in paperfeed and was skipped: “A paper nobody has heard of”." in page


def test_muting_one_word_says_it_in_the_singular(ada):
    post(ada, "/settings/muted", {"muted": "LLM"})
    assert "1 muted keyword: papers containing it, or a longer form" in ada.get(
        "/settings"
    ).get_data(as_text=True)
    post(ada, "/settings/muted", {"muted": ""})
    assert "No muted keywords" in ada.get("/settings").get_data(as_text=True)
    assert "“LLM” hides “LLMs”" in ada.get("/settings").get_data(as_text=True)


def test_muting_llm_hides_llms_in_the_feed(ada, db, tmp_path):
    dump = tmp_path / "llm.jsonl"
    rows = [
        {"title": "Scaling LLMs to long contexts", "abstract": "We scale them."},
        {"title": "Robot grasping", "abstract": "Hands and objects."},
    ]
    dump.write_text("\n".join(json.dumps(r) for r in rows))
    ingest_paths(db, [dump], dump_date="2026-12-01")
    assert len(feed(ada)) == 2
    post(ada, "/settings/muted", {"muted": "LLM"})
    assert [p["title"] for p in feed(ada)] == ["Robot grasping"]


# -- the digest form ------------------------------------------------------------------------------


DAILY = {
    "digest_enabled": "1",
    "digest_cadence": "daily",
    "digest_hour": "6",
    "timezone": "Europe/Berlin",
    "digest_size": "10",
    "min_score": "",
}


def test_a_daily_digest_saves_without_a_weekday_and_keeps_the_one_stored(ada, db):
    uid = user_id(db, "ada@example.org")
    store.update_settings(db, uid, {"digest_weekday": 4})
    response = post(ada, "/settings/digest", DAILY)  # the disabled select sends nothing
    assert response.status_code == 302
    user = store.get_user(db, uid)
    assert (user["digest_cadence"], user["digest_weekday"], user["digest_hour"]) == ("daily", 4, 6)


def test_a_weekly_digest_still_needs_its_weekday(ada):
    response = post(ada, "/settings/digest", {**DAILY, "digest_cadence": "weekly"})
    assert response.status_code == 400
    assert "The weekday must be a whole number from 0 to 6." in response.get_data(as_text=True)


# -- the email's "Like this paper?" page ----------------------------------------------------------


def test_the_emails_like_page_shows_the_paper_and_one_primary_button(
    app, client, db, data_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("PAPERFEED_SECRET_KEY", "test-secret")  # the app fixture's key
    sign_up(client, "ada@example.org")
    post(client, "/welcome/keywords", {"keywords": "sequence transduction recurrent"})
    uid = user_id(db, "ada@example.org")
    dump = tmp_path / "day.jsonl"
    paper = {
        "title": "Attention Is All You Need",
        "abstract": "The dominant sequence transduction models are based on recurrent networks.",
        "authors": ["Ashish Vaswani", "Noam Shazeer"],
    }
    dump.write_text(json.dumps(paper))
    ingest_paths(db, [dump], dump_date="2026-12-01")
    pipeline.refit(db, load_settings(data_dir))  # as the scheduler does after an ingest
    now = datetime.now(UTC)
    store.confirm_email(db, uid, "ada@example.org")
    store.update_settings(
        db, uid, {"digest_enabled": 1, "digest_hour": now.hour, "timezone": "UTC"}
    )
    run = digest.send_due_digests(db, load_settings(data_dir), now=now, email="ada@example.org")
    assert run.sent == 1
    body = mails(data_dir)[-1].get_body(("plain",)).get_content()
    pid = db.execute("SELECT id FROM papers WHERE title = ?", [paper["title"]]).fetchone()[0]
    like = re.search(rf"https?://[^/\s]+(/r/\S+/{pid}/like)", body).group(1)
    anonymous = app.test_client()
    page = anonymous.get(like).get_data(as_text=True)
    assert "Like this paper?" in page
    assert "Attention Is All You Need" in page
    assert "Ashish Vaswani, Noam Shazeer" in page
    assert paper["abstract"] in page
    main = page[page.index("<main") :]
    assert len(re.findall(r'class="btn btn-primary', main)) == 1
    assert re.search(r'<button type="submit" class="btn btn-primary[^"]*">.*Yes, like it', page)
    assert_csp_safe(page, like)
