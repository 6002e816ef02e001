"""Interests on the web (issue 18): POST forms with CSRF, no change on GET, the feed's
sections in its JSON twin, bad input answered clearly."""

from __future__ import annotations

from recommender import store

from .._web import NEW_DAY, post, user_id


def interests(client) -> list[tuple[str, int]]:
    return [(i["name"], i["likes"]) for i in client.get("/interests.json").get_json()["interests"]]


def test_interest_forms_need_their_csrf_token_and_get_changes_nothing(ada, db):
    uid = user_id(db, "ada@example.org")
    assert ada.post("/interests", data={"name": "Speech"}).status_code == 400  # no token
    assert store.list_interests(db, uid) == []
    assert post(ada, "/interests", {"name": "Speech", "next": "/settings"}).status_code == 302
    [speech] = store.list_interests(db, uid)
    for action in ("rename", "merge", "delete"):
        assert ada.get(f"/interests/{speech['id']}/{action}").status_code == 405
        assert ada.post(f"/interests/{speech['id']}/{action}").status_code == 400
    assert store.list_interests(db, uid) == [speech]
    # Another person's interest is not theirs to change.
    other = store.create_user(db, "grace@example.org", None)
    theirs = store.create_interest(db, other, "Mine")
    response = post(ada, f"/interests/{theirs}/delete", {"next": "/settings"})
    assert response.status_code == 302
    assert "No such interest" in ada.get("/settings").get_data(as_text=True)
    assert store.list_interests(db, other)[0]["name"] == "Mine"


def test_like_under_an_interest_and_see_the_sections_in_the_json_twin(ada, db):
    uid = user_id(db, "ada@example.org")
    post(ada, "/interests", {"name": "Speech"})
    post(ada, "/interests", {"name": "Vision"})
    speech, vision = (i["id"] for i in store.list_interests(db, uid))
    body = ada.get(f"/feed.json?window={NEW_DAY}").get_json()
    # Named interests without likes: nothing to rank them on, one section of everything.
    assert [s["name"] for s in body["sections"]] == ["General"]
    papers = body["papers"]
    first, second, third = (p["paper_id"] for p in papers[:3])
    post(ada, f"/papers/{first}/rate", {"value": "like", "interest": str(speech)})
    post(ada, f"/papers/{second}/rate", {"value": "like", "interest": str(vision)})
    post(ada, f"/papers/{third}/rate", {"value": "like", "interest": "0"})
    assert interests(ada) == [("General", 1), ("Speech", 1), ("Vision", 1)]
    body = ada.get(f"/feed.json?window={NEW_DAY}").get_json()
    assert [s["name"] for s in body["sections"]] == ["General", "Speech", "Vision"]
    listed = [pid for s in body["sections"] for pid in s["papers"]]
    assert sorted(listed) == sorted(p["paper_id"] for p in body["papers"])
    assert len(listed) == len(set(listed))
    assert {p["section"] for p in body["papers"]} == {"General", "Speech", "Vision"}
    page = ada.get(f"/?window={NEW_DAY}").get_data(as_text=True)
    assert page.count('class="interest-section"') == 3
    # One interest chosen: no sections; an interest that is not theirs: 404.
    chosen = ada.get(f"/feed.json?window={NEW_DAY}&interest={vision}").get_json()
    assert chosen["sections"] == [] and chosen["interest"] == vision
    assert ada.get("/feed.json?interest=999").status_code == 404
    # A like under an interest that does not exist is refused and records nothing.
    response = post(
        ada, f"/papers/{papers[4]['paper_id']}/rate", {"value": "like", "interest": "999"}
    )
    assert response.status_code == 400 and "No such interest" in response.get_data(as_text=True)
    assert papers[4]["paper_id"] not in store.rating_values(db, uid)
    # Merge Vision into Speech, then delete Speech: every like ends in General.
    post(ada, f"/interests/{vision}/merge", {"into": str(speech)})
    assert interests(ada) == [("General", 1), ("Speech", 2)]
    post(ada, f"/interests/{speech}/rename", {"name": "Audio"})
    post(ada, f"/interests/{speech}/delete")
    assert interests(ada) == []
    assert store.rating_counts(db, uid) == (3, 3)


def test_the_atom_feed_names_each_entrys_interest(ada, db):
    uid = user_id(db, "ada@example.org")
    token = store.rotate_feed_token(db, uid)
    before = ada.get(f"/atom/{token}.xml").get_data(as_text=True)
    assert "<category" not in before  # one interest: the feed as it was
    speech = store.create_interest(db, uid, "Speech")
    papers = ada.get(f"/atom/{token}.json").get_json()["papers"]
    store.set_rating(db, uid, papers[0]["paper_id"], 1, interest_id=speech)
    store.set_rating(db, uid, papers[1]["paper_id"], 1)
    atom = ada.get(f"/atom/{token}.xml").get_data(as_text=True)
    assert '<category term="Speech"/>' in atom and '<category term="General"/>' in atom
    entries = ada.get(f"/atom/{token}.json").get_json()["papers"]
    ids = [p["paper_id"] for p in entries]
    assert len(ids) == len(set(ids)) and {p["section"] for p in entries} == {"General", "Speech"}
