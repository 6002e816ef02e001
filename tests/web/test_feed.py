"""Feed, rating, onboarding, search and paper pages, and their JSON twins."""

from __future__ import annotations

import json

import pytest

from recommender import pipeline, store
from recommender.config import load_settings
from recommender.dumps import parse_dump
from recommender.ingest import ingest_paths

from .._web import NEW_DAY, OLD_DAY, post, rate_by_fetch, sign_up, user_id

FEED_ITEM_KEYS = {
    "paper_id",
    "followed_author",
    "tldr",
    "thumbnail",
    "title",
    "abstract",
    "url",
    "score",
    "reason",
    "because_paper_id",
    "terms",
    "rating",
    "dump_id",
    "dump_date",
    "authors",
    "arxiv_id",
    "links",
    "published",
    "reason_kind",
    "match",
    "topic",
}


def feed_ids(client, query: str = "") -> list[int]:
    return [p["paper_id"] for p in client.get("/feed.json" + query).get_json()["papers"]]


def whole_feed(client, query: str = "") -> list[dict]:
    """Every page of the feed, in order."""
    papers, page = [], 1
    while page:
        body = client.get(f"/feed.json?page={page}{query}").get_json()
        papers += body["papers"]
        page = body["next_page"]
    return papers


def test_the_feed_ranks_the_newest_dump_and_its_json_twin_matches_the_page(ada, db):
    body = ada.get("/feed.json").get_json()
    assert body["dump"]["date"] == NEW_DAY
    assert [d["date"] for d in body["dumps"]] == [NEW_DAY, OLD_DAY]
    assert len(body["papers"]) == 20 and body["next_page"] == 2 and body["page"] == 1
    assert set(body["papers"][0]) == FEED_ITEM_KEYS
    assert {p["dump_date"] for p in body["papers"]} == {NEW_DAY}
    page = ada.get("/").get_data(as_text=True)
    titles = [p["title"] for p in body["papers"]]
    positions = [page.index(f">{t}</a>") for t in titles]  # same papers, same order
    assert positions == sorted(positions)


def test_pages_do_not_overlap_and_the_last_page_has_no_next(ada, db):
    new_papers = store.latest_dump(db)["new_papers"]
    pages, page = [], 1
    while page:
        body = ada.get(f"/feed.json?page={page}").get_json()
        pages.append([p["paper_id"] for p in body["papers"]])
        page = body["next_page"]
    ids = [pid for chunk in pages for pid in chunk]
    assert len(ids) == len(set(ids)) == new_papers == 130  # every new paper of the dump, once


def test_an_earlier_dump_can_be_chosen_and_an_unknown_one_is_404(ada, db):
    old = [d for d in store.list_dumps(db) if d["dump_date"] == OLD_DAY][0]
    body = ada.get(f"/feed.json?dump={old['id']}").get_json()
    assert body["dump"]["date"] == OLD_DAY and {p["dump_date"] for p in body["papers"]} == {OLD_DAY}
    assert ada.get("/?dump=999").status_code == 404


def test_the_picker_counts_what_each_day_shows_even_for_a_day_fetched_late(ada, db):
    # The newest day's papers arrive again in a dump dated the day before, ingested last
    # (a day fetched late): that earlier day is where they are new.
    newest = [d for d in store.list_dumps(db) if d["dump_date"] == NEW_DAY][0]
    rows = store.dump_papers(db, newest["id"])[:7]
    late = "\n".join(json.dumps({"title": r["title"], "abstract": r["abstract"]}) for r in rows)
    store.record_dump(db, parse_dump(late.encode(), fmt="jsonl"), dump_date="2026-11-18")
    assert store.list_dumps(db)[-1]["new_papers"] == 0  # the dump's own count: nothing new
    page = ada.get("/").get_data(as_text=True)
    for day in store.list_days(db):
        shown = ada.get(f"/feed.json?window={day['day']}").get_json()["window"]["candidates"]
        assert day["new_papers"] == shown, day
        assert f"{day['day']} · {shown} new<" in page
    assert "2026-11-18 · 7 new<" in page


def test_a_day_without_a_dump_says_so_not_all_caught_up(ada):
    page = ada.get("/?window=2026-11-01").get_data(as_text=True)
    assert "No papers dated 2026-11-01" in page and "all caught up" not in page
    # The picker shows the day chosen, not the first window of its list.
    assert '<option value="2026-11-01" selected>2026-11-01 · no dump</option>' in page
    assert page.count(" selected>") == 1


def test_a_like_by_fetch_answers_json_and_the_paper_leaves_the_feed(ada, db):
    first = feed_ids(ada)[0]
    response = rate_by_fetch(ada, first, "like")
    assert response.status_code == 200
    assert response.get_json() == {"paper_id": first, "rating": 1}
    assert pipeline.user_ratings(db, user_id(db, "ada@example.org"))[0]["paper_id"] == first
    assert first not in feed_ids(ada)
    seen = whole_feed(ada, "&seen=1")
    assert {p["paper_id"]: p["rating"] for p in seen}[first] == 1
    assert seen[-1]["paper_id"] == first  # rated papers follow the ranked ones


def test_a_like_changes_the_ranking_at_once(ada):
    before = feed_ids(ada)
    liked = before[7]
    rate_by_fetch(ada, liked, "like")
    after = feed_ids(ada)
    assert liked not in after
    assert after != [p for p in before if p != liked][: len(after)]
    assert ada.get("/feed.json").get_json()["papers"][0]["reason"].startswith("because you liked")


def test_rating_by_form_without_javascript_redirects_back_and_undo_forgets(ada, db):
    paper = feed_ids(ada)[0]
    response = post(ada, f"/papers/{paper}/rate", {"value": "dislike", "next": "/?page=2"})
    assert response.status_code == 302 and response.headers["Location"] == "/?page=2"
    assert "Disliked" in ada.get("/?page=2").get_data(as_text=True)
    uid = user_id(db, "ada@example.org")
    assert store.rating_values(db, uid) == {paper: -1}
    away = post(ada, f"/papers/{paper}/rate", {"value": "undo", "next": "https://evil.example/"})
    assert away.headers["Location"] == "/"
    assert store.rating_values(db, uid) == {}


def test_a_bad_rating_is_400_and_an_unknown_paper_404(ada):
    paper = feed_ids(ada)[0]
    assert rate_by_fetch(ada, paper, "love").status_code == 400
    assert rate_by_fetch(ada, 99999, "like").status_code == 404


def test_papers_shown_on_an_earlier_day_are_not_repeated_unless_asked(ada, db):
    uid = user_id(db, "ada@example.org")
    shown = feed_ids(ada)[:3]
    # Move today's impressions to yesterday, as if the person had visited then.
    db.execute("UPDATE impressions SET shown_on = '2000-01-01' WHERE paper_id IN (?, ?, ?)", shown)
    db.conn.commit()
    assert not set(shown) & set(feed_ids(ada))
    assert set(shown) <= {p["paper_id"] for p in whole_feed(ada, "&seen=1")}
    assert db.execute("SELECT count(*) FROM impressions WHERE user_id = ?", [uid]).fetchone()[0]


def test_muted_keywords_hide_papers_everywhere_in_the_feed(ada):
    titles = " ".join(p["title"] for p in ada.get("/feed.json").get_json()["papers"]).lower()
    assert "normaliz" in titles
    post(ada, "/settings/muted", {"muted": "Normalization\nnormalizing, norm"})
    assert ada.get("/settings.json").get_json()["muted_keywords"] == [
        "Normalization",
        "normalizing",
        "norm",
    ]
    for paper in whole_feed(ada, "&seen=1"):
        text = f"{paper['title']} {paper['abstract']}".lower()
        assert "normalization" not in text and "normalizing" not in text


def test_script_in_titles_and_abstracts_is_escaped_and_only_http_links_render(ada, db, tmp_path):
    evil = tmp_path / "evil.jsonl"
    rows = [
        {
            "title": f"<script>alert({i})</script> Evil paper {i}",
            "abstract": "<img src=x onerror=alert(1)> diffusion models <b>bold</b>",
            "url": "javascript:alert(1)" if i == 0 else "https://arxiv.org/abs/1",
        }
        for i in range(3)
    ]
    evil.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    ingest_paths(db, [evil], dump_date="2026-12-01")
    feed = ada.get("/").get_data(as_text=True)
    assert "&lt;script&gt;alert(0)&lt;/script&gt; Evil paper 0" in feed
    assert "<script>alert" not in feed and "<img src=x" not in feed
    assert "javascript:" not in feed and 'href="https://arxiv.org/abs/1"' in feed
    paper = ada.get("/feed.json").get_json()["papers"][0]["paper_id"]
    for page in (f"/papers/{paper}", "/search?q=evil", "/welcome"):
        html = ada.get(page).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, page


def test_onboarding_keywords_steer_the_first_feed(ada, db):
    welcome = ada.get("/welcome.json").get_json()
    assert welcome["likes"] == 0 and welcome["keywords"] == ""
    assert 6 <= len(welcome["papers"]) <= 12
    assert {"paper_id", "title", "abstract", "rating"} <= set(welcome["papers"][0])
    response = post(ada, "/welcome/keywords", {"keywords": "  speech   recognition "})
    assert response.status_code == 302
    assert ada.get("/welcome.json").get_json()["keywords"] == "speech recognition"
    top = ada.get("/feed.json").get_json()["papers"][:3]
    assert any("speech" in (p["title"] + p["abstract"]).lower() for p in top)
    assert top[0]["reason"] == "matches ‘speech recognition’"
    assert top[0]["reason_kind"] == "topic" and top[0]["topic"] == "speech recognition"


def test_search_finds_papers_with_the_persons_rating(ada, db):
    body = ada.get("/search.json?q=normalizing flows").get_json()
    assert body["query"] == "normalizing flows" and body["papers"]
    assert set(body["papers"][0]) == {
        *("paper_id", "title", "abstract", "url", "rating"),
        *("authors", "arxiv_id", "links", "published", "muted"),
    }
    assert body["matched"] == "all"
    assert "flow" in body["papers"][0]["title"].lower()
    paper = body["papers"][0]["paper_id"]
    rate_by_fetch(ada, paper, "like")
    again = ada.get("/search.json?q=normalizing flows").get_json()["papers"]
    assert {p["paper_id"]: p["rating"] for p in again}[paper] == 1
    html = ada.get("/search?q=normalizing+flows").get_data(as_text=True)
    assert body["papers"][0]["title"] in html


def test_search_survives_fts_syntax_and_empty_queries(ada):
    for query in ['"unbalanced', "a AND OR NOT", "NEAR(", "-", ""]:
        response = ada.get("/search.json", query_string={"q": query})
        assert response.status_code == 200, query
    assert ada.get("/search.json?q=").get_json()["papers"] == []
    assert ada.get("/search?q=zzzzqqqq").status_code == 200


def test_the_paper_page_shows_dumps_similar_papers_and_the_rating(ada, db):
    paper = feed_ids(ada)[0]
    rate_by_fetch(ada, paper, "dislike")
    body = ada.get(f"/papers/{paper}.json").get_json()
    assert body["id"] == paper and body["rating"] == -1
    assert [d["dump_date"] for d in body["dumps"]] == [NEW_DAY]
    assert len(body["similar"]) == 8 and set(body["similar"][0]) == {"id", "title", "score"}
    assert paper not in [s["id"] for s in body["similar"]]
    html = ada.get(f"/papers/{paper}").get_data(as_text=True)
    assert "Similar papers" in html and body["similar"][0]["title"] in html
    # The test corpus is fitted with TF-IDF: similarity is words in common.
    assert body["similarity"] == "tfidf" and "no words in common" in html
    assert ada.get("/papers/99999").status_code == 404
    assert ada.get("/papers/99999.json").get_json()["status"] == 404


def test_nobody_sees_or_changes_another_persons_ratings_or_feed(app, db):
    ada, bob = app.test_client(), app.test_client()
    sign_up(ada, "ada@example.org")
    sign_up(bob, "bob@example.org")
    liked = feed_ids(ada)[0]
    rate_by_fetch(ada, liked, "like")
    post(ada, "/settings/muted", {"muted": "secretword"})
    # Bob sees the paper unrated, everywhere, and his feed still has it.
    assert liked in feed_ids(bob)
    assert bob.get(f"/papers/{liked}.json").get_json()["rating"] is None
    assert all(p["rating"] is None for p in whole_feed(bob, "&seen=1"))
    assert bob.get("/settings.json").get_json()["muted_keywords"] == []
    assert "secretword" not in bob.get("/settings").get_data(as_text=True)
    # Bob's undo touches only Bob's ratings; Ada's export does not include Bob's.
    rate_by_fetch(bob, liked, "undo")
    rate_by_fetch(bob, feed_ids(bob)[1], "dislike")
    assert store.rating_values(db, user_id(db, "ada@example.org")) == {liked: 1}
    assert ada.get("/settings/export?format=json").get_json()["ratings"][0]["rating"] == "like"
    assert len(ada.get("/settings/export?format=json").get_json()["ratings"]) == 1


def test_with_sentence_embeddings_the_similar_papers_caption_speaks_of_meaning(
    tmp_path, monkeypatch
):
    pytest.importorskip("sentence_transformers")
    from web import create_app

    monkeypatch.setenv("PAPERFEED_TEXT_MODEL", "embeddings")
    monkeypatch.setenv("PAPERFEED_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    db = store.open_db(data / "paperfeed.db")
    rows = [
        {"title": "Speech recognition with transformers", "abstract": "Spoken words to text."},
        {"title": "Automatic transcription of talks", "abstract": "Audio of lectures to text."},
        {"title": "Protein folding with graphs", "abstract": "Residues and contacts."},
    ]
    dump = "\n".join(json.dumps(r) for r in rows).encode()
    store.record_dump(db, parse_dump(dump, fmt="jsonl"), dump_date=NEW_DAY)
    pipeline.refit(db, load_settings(data))
    db.close()
    client = create_app({"DATA_DIR": str(data), "SECRET_KEY": "s"}).test_client()
    sign_up(client, "ada@example.org")
    body = client.get("/papers/1.json").get_json()
    assert body["similarity"] == "embeddings"
    assert body["similar"][0]["title"] == "Automatic transcription of talks"  # closest in meaning
    html = client.get("/papers/1").get_data(as_text=True)
    assert "Closest in meaning first" in html and "words in common" not in html
