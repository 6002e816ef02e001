"""Every reader of a feed asks the one feed query (FeedService.feed): the same person and
window give the same order on the page, in its JSON twin, in the Atom feed and its JSON
twin, after a re-rank, and in the digest."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from recommender import digest, store
from recommender.config import load_settings

from .._web import NEW_DAY, OLD_DAY, csrf_token, post, user_id

ATOM = "{http://www.w3.org/2005/Atom}"
CARD = re.compile(r'<article class="paper[^"]*" id="paper-(\d+)"')


def page_order(client, query: str) -> list[int]:
    html = client.get("/" + query).get_data(as_text=True)
    return [int(p) for p in CARD.findall(html)]


def json_order(client, query: str) -> list[int]:
    return [p["paper_id"] for p in client.get("/feed.json" + query).get_json()["papers"]]


def atom_orders(client, path: str) -> tuple[list[int], list[int]]:
    root = ET.fromstring(client.get(path + ".xml").data)
    xml = [int(e.find(f"{ATOM}id").text.rsplit("/", 1)[1]) for e in root.iter(f"{ATOM}entry")]
    twin = [p["paper_id"] for p in client.get(path + ".json").get_json()["papers"]]
    return xml, twin


def test_the_page_json_atom_rerank_and_digest_give_one_order(ada, db, data_dir):
    post(ada, "/welcome/keywords", {"keywords": "speech recognition"})
    uid = user_id(db, "ada@example.org")
    older = [p["paper_id"] for p in ada.get(f"/feed.json?window={OLD_DAY}").get_json()["papers"]]
    for paper in older[:4]:  # likes from the older day: the newest day is ranked on them
        post(ada, f"/papers/{paper}/rate", {"value": "like"})
    post(ada, "/settings/atom", {"action": "regenerate"})
    atom = "/atom/" + ada.get("/settings.json").get_json()["atom_url"].split("/atom/")[1]
    atom = atom.removesuffix(".xml")

    # "today": the newest day's papers, as the Atom feed always shows them.
    page = page_order(ada, "?window=today")
    assert len(page) == 20
    assert json_order(ada, "?window=today") == page
    xml, twin = atom_orders(ada, atom)
    assert xml == twin and xml[:20] == page

    # A like re-ranks the page's cards in the order a reload shows, and every reader agrees.
    liked = page[7]
    answer = ada.post(
        f"/papers/{liked}/rate",
        data={"value": "like", "next": "/?window=today", "visible": ",".join(map(str, page))},
        headers={"X-CSRFToken": csrf_token(ada), "Accept": "application/json"},
    ).get_json()
    reloaded = page_order(ada, "?window=today")
    assert liked not in reloaded
    assert sorted(answer["order"]) == sorted(p for p in page if p != liked)
    assert [p for p in answer["order"] if p in reloaded] == [p for p in reloaded if p in page]
    assert json_order(ada, "?window=today") == reloaded
    xml, twin = atom_orders(ada, atom)
    assert xml == twin and xml[:20] == reloaded

    # The first digest: the newest dump's papers (the older one was ingested days before).
    db.execute(
        "UPDATE dumps SET ingested_at = '2026-11-19T08:00:00Z' WHERE dump_date = ?", [OLD_DAY]
    )
    now = datetime.now(UTC).replace(microsecond=0)
    store.confirm_email(db, uid, "ada@example.org")
    store.update_settings(
        db,
        uid,
        {"digest_enabled": 1, "digest_hour": now.hour, "timezone": "UTC", "digest_size": 15},
    )
    assert {d["dump_date"] for d in store.list_dumps(db)} == {OLD_DAY, NEW_DAY}
    run = digest.send_due_digests(db, load_settings(data_dir), now=now, email="ada@example.org")
    assert run.sent == 1
    (row,) = store.digests_in_state(db, "sent")
    mailed = [p["paper_id"] for p in store.digest_papers(db, row["id"])]
    assert mailed == reloaded[:15]
