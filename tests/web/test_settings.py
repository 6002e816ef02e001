"""Settings: digest, muted keywords, reset, export/import, upload limit, the Atom feed."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest

from recommender import store

from .._web import log_in, post, rate_by_fetch, sign_up, user_id

ATOM = "{http://www.w3.org/2005/Atom}"
DIGEST = {
    "digest_enabled": "1",
    "digest_cadence": "weekly",
    "digest_weekday": "4",
    "digest_hour": "18",
    "timezone": "Europe/Berlin",
    "digest_size": "25",
    "min_score": "0.5",
}


def like_some(client, n: int = 3) -> list[int]:
    papers = [p["paper_id"] for p in client.get("/feed.json").get_json()["papers"][:n]]
    for i, paper in enumerate(papers):
        rate_by_fetch(client, paper, "dislike" if i == n - 1 else "like")
    return papers


def test_the_settings_page_and_its_json_twin(ada):
    assert ada.get("/settings").status_code == 200
    body = ada.get("/settings.json").get_json()
    assert body["email"] == "ada@example.org" and body["ratings"] == 0
    assert body["timezone"] == "UTC" and body["atom_url"] is None
    assert "password_hash" not in body and "auth_version" not in body


def test_digest_settings_are_saved(ada):
    assert post(ada, "/settings/digest", DIGEST).status_code == 302
    body = ada.get("/settings.json").get_json()
    assert {k: body[k] for k in DIGEST} == {
        "digest_enabled": 1,
        "digest_cadence": "weekly",
        "digest_weekday": 4,
        "digest_hour": 18,
        "timezone": "Europe/Berlin",
        "digest_size": 25,
        "min_score": 0.5,
    }
    post(ada, "/settings/digest", {**DIGEST, "digest_enabled": "", "min_score": ""})
    body = ada.get("/settings.json").get_json()
    assert body["digest_enabled"] == 0 and body["min_score"] is None


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("timezone", "Mars/Olympus", "not a time zone name"),
        ("timezone", "../../etc/passwd", "not a time zone name"),
        ("digest_hour", "24", "from 0 to 23"),
        ("digest_size", "0", "from 1 to 100"),
        ("digest_cadence", "hourly", "daily or weekly"),
        ("min_score", "high", "must be a number"),
        ("min_score", "1e999", "must be a number"),  # inf: no digest would ever be sent
        ("min_score", "-inf", "must be a number"),
        ("min_score", "NaN", "must be a number"),  # /settings.json would not be JSON
    ],
)
def test_bad_digest_settings_name_the_field_and_change_nothing(ada, field, value, problem):
    before = ada.get("/settings.json").get_json()
    response = post(ada, "/settings/digest", {**DIGEST, field: value})
    assert response.status_code == 400 and problem in response.get_data(as_text=True)
    assert ada.get("/settings.json").get_json() == before


def test_reset_needs_the_box_ticked_then_forgets_ratings_and_impressions(ada, db):
    like_some(ada)
    uid = user_id(db, "ada@example.org")
    post(ada, "/settings/reset", {})
    assert len(store.rating_values(db, uid)) == 3
    assert post(ada, "/settings/reset", {"confirm": "yes"}).status_code == 302
    assert store.rating_values(db, uid) == {}
    assert db.execute("SELECT count(*) FROM impressions WHERE user_id = ?", [uid]).fetchone() == (
        0,
    )
    assert ada.get("/settings.json").get_json()["email"] == "ada@example.org"


@pytest.mark.parametrize(
    ("fmt", "media"),
    [("csv", "text/csv"), ("json", "application/json"), ("bibtex", "application/x-bibtex")],
)
def test_export_then_import_into_another_account_gives_the_same_ratings(app, db, fmt, media):
    ada, bob = app.test_client(), app.test_client()
    sign_up(ada, "ada@example.org")
    sign_up(bob, "bob@example.org")
    like_some(ada, 4)
    export = ada.get(f"/settings/export?format={fmt}")
    assert export.status_code == 200 and export.mimetype == media
    assert "attachment" in export.headers["Content-Disposition"]
    upload = {"file": (io.BytesIO(export.data), f"ratings.{'bib' if fmt == 'bibtex' else fmt}")}
    response = post(bob, "/settings/import", upload, content_type="multipart/form-data")
    assert response.status_code == 302
    assert "Imported 4 ratings" in bob.get("/settings").get_data(as_text=True)
    ada_ratings = store.rating_values(db, user_id(db, "ada@example.org"))
    assert store.rating_values(db, user_id(db, "bob@example.org")) == ada_ratings


def test_a_malformed_import_names_the_line_and_imports_nothing(ada, db):
    title = ada.get("/feed.json").get_json()["papers"][0]["title"]
    text = f'title,rating\n"{title}",like\nAnother,maybe\n'
    upload = {"file": (io.BytesIO(text.encode()), "mine.csv")}
    response = post(ada, "/settings/import", upload, content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Nothing was imported" in page and "mine.csv:3" in page and "maybe" in page
    assert store.rating_values(db, user_id(db, "ada@example.org")) == {}


def test_papers_not_in_paperfeed_are_reported_not_invented(ada, db):
    text = "title,rating\nA paper nobody has heard of,like\n"
    upload = {"file": (io.BytesIO(text.encode()), "mine.csv")}
    post(ada, "/settings/import", upload, content_type="multipart/form-data")
    page = ada.get("/settings").get_data(as_text=True)
    assert "Imported 0 ratings" in page and "A paper nobody has heard of" in page
    assert store.rating_values(db, user_id(db, "ada@example.org")) == {}


def test_an_upload_over_2_mb_gets_a_clear_413_page(ada):
    big = io.BytesIO(b"title,rating\n" + b"x" * (2 * 1024 * 1024 + 1))
    response = post(
        ada, "/settings/import", {"file": (big, "big.csv")}, content_type="multipart/form-data"
    )
    assert response.status_code == 413
    assert "limited to 2 MB" in response.get_data(as_text=True)


def test_the_atom_feed_is_off_until_turned_on_and_is_valid_atom(ada, client, db):
    like_some(ada, 2)
    post(ada, "/settings/atom", {"action": "regenerate"})
    url = ada.get("/settings.json").get_json()["atom_url"]
    path = url.split("://", 1)[1].split("/", 1)[1]
    assert path.startswith("atom/") and path.endswith(".xml")
    anonymous = client.application.test_client()  # no session: the token is the key
    response = anonymous.get("/" + path)
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    feed = ET.fromstring(response.data)
    entries = feed.findall(f"{ATOM}entry")
    twin = anonymous.get("/" + path.replace(".xml", ".json")).get_json()["papers"]
    assert len(entries) == len(twin) == 30
    assert [e.find(f"{ATOM}title").text for e in entries] == [p["title"] for p in twin]
    assert all(p["rating"] is None for p in twin)


def test_a_regenerated_or_revoked_atom_token_stops_working(ada, client):
    post(ada, "/settings/atom", {"action": "regenerate"})
    first = ada.get("/settings.json").get_json()["atom_url"].split("/atom/")[1]
    post(ada, "/settings/atom", {"action": "regenerate"})
    second = ada.get("/settings.json").get_json()["atom_url"].split("/atom/")[1]
    assert first != second
    assert client.get(f"/atom/{first}").status_code == 404
    assert client.get(f"/atom/{second}").status_code == 200
    post(ada, "/settings/atom", {"action": "revoke"})
    assert client.get(f"/atom/{second}").status_code == 404
    assert client.get(f"/atom/{second.replace('.xml', '.json')}").status_code == 404
    assert ada.get("/settings.json").get_json()["atom_url"] is None


def test_each_atom_feed_is_its_owners(app, db):
    ada, bob = app.test_client(), app.test_client()
    sign_up(ada, "ada@example.org")
    sign_up(bob, "bob@example.org")
    post(ada, "/welcome/keywords", {"keywords": "speech recognition"})
    post(ada, "/settings/atom", {"action": "regenerate"})
    post(bob, "/settings/atom", {"action": "regenerate"})
    ada_url = ada.get("/settings.json").get_json()["atom_url"]
    bob_url = bob.get("/settings.json").get_json()["atom_url"]
    anonymous = app.test_client()
    ada_feed = anonymous.get("/atom/" + ada_url.split("/atom/")[1].replace(".xml", ".json"))
    bob_feed = anonymous.get("/atom/" + bob_url.split("/atom/")[1].replace(".xml", ".json"))
    assert ada_feed.get_json() != bob_feed.get_json()
    assert ada_feed.get_json()["papers"][0]["reason"] == "matches ‘speech recognition’"


def test_script_in_a_title_is_escaped_in_atom(ada, db, tmp_path):
    import json

    from recommender.ingest import ingest_paths

    evil = tmp_path / "evil.jsonl"
    evil.write_text(json.dumps({"title": "<script>alert(1)</script> & co", "abstract": "x <b>y"}))
    ingest_paths(db, [evil], dump_date="2026-12-01")
    post(ada, "/settings/atom", {"action": "regenerate"})
    token = ada.get("/settings.json").get_json()["atom_url"].split("/atom/")[1]
    response = ada.get(f"/atom/{token}")
    assert b"<script>" not in response.data
    [entry] = ET.fromstring(response.data).findall(f"{ATOM}entry")
    assert entry.find(f"{ATOM}title").text == "<script>alert(1)</script> & co"


def test_the_compact_list_is_chosen_in_settings_and_remembered(app, ada, db):
    assert ada.get("/settings.json").get_json()["feed_layout"] == "cards"
    assert "is-compact" not in ada.get("/").get_data(as_text=True)
    response = post(ada, "/settings/reading", {"feed_layout": "compact"})
    assert response.status_code == 302 and response.location.endswith("/settings#reading")
    assert "compact list" in ada.get("/settings").get_data(as_text=True)
    # Kept with the account: another browser of the same person gets it too.
    other = app.test_client()
    log_in(other, "ada@example.org")
    for client in (ada, other):
        assert client.get("/settings.json").get_json()["feed_layout"] == "compact"
        assert 'class="papers is-compact"' in client.get("/").get_data(as_text=True)
        page = client.get("/search?q=speech").get_data(as_text=True)
        assert 'class="papers is-compact"' in page
    bad = post(ada, "/settings/reading", {"feed_layout": "<grid>"})
    assert bad.status_code == 400 and "&lt;grid&gt;" in bad.get_data(as_text=True)
    assert store.get_user_by_email(db, "ada@example.org")["feed_layout"] == "compact"
